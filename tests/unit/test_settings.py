"""Settings: environment with the METRIC_STREAM_ prefix, explicit arguments first, and
secrets that never show."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import ValidationError

from metric_stream.settings import Settings

SECRET = "s3cr3t-value-never-shown"


def test_defaults_are_the_embedded_backend_in_the_working_folder() -> None:
    settings = Settings()
    assert settings.backend == "embedded"
    assert settings.home == Path(".metric-stream")
    assert settings.database_path == Path(".metric-stream/metric-stream.db")


def test_environment_is_read_and_explicit_arguments_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRIC_STREAM_BACKEND", "aws")
    monkeypatch.setenv("METRIC_STREAM_TABLE_NAME", "from-env")
    assert Settings().backend == "aws"
    assert Settings().table_name == "from-env"
    assert Settings(table_name="explicit").table_name == "explicit"


def test_secrets_never_show(monkeypatch: pytest.MonkeyPatch,
                            caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("METRIC_STREAM_ADMIN_KEY", SECRET)
    monkeypatch.setenv("METRIC_STREAM_INGESTION_KEY", SECRET)
    monkeypatch.setenv("METRIC_STREAM_HMAC_SECRET", SECRET)
    settings = Settings()
    assert settings.admin_key is not None
    assert settings.admin_key.get_secret_value() == SECRET
    for text in (repr(settings), str(settings), settings.model_dump_json(),
                 str(settings.model_dump())):
        assert SECRET not in text
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("settings: %s %r", settings, settings)
    assert SECRET not in caplog.text


@pytest.mark.parametrize(("name", "value", "message"), [
    ("backend", "gcp", "'embedded' or 'aws'"),
    ("aws_endpoint_url", "localhost:5000", "http://"),
    ("queue_max_receives", "0", "greater than or equal to 1"),
    ("bucket_name", "Bad_Bucket", "String should match pattern"),
])
def test_bad_values_are_refused_with_the_field(monkeypatch: pytest.MonkeyPatch, name: str,
                                               value: str, message: str) -> None:
    monkeypatch.setenv(f"METRIC_STREAM_{name.upper()}", value)
    with pytest.raises(ValidationError) as error:
        Settings()
    (problem,) = error.value.errors()
    assert problem["loc"] == (name,)
    assert message in problem["msg"]
