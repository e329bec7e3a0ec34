"""Shared fixtures: a clean environment per test, and the services on every backend."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from metric_stream.bootstrap import Services, build_services
from metric_stream.clock import ManualClock
from metric_stream.settings import Settings

_AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No METRIC_STREAM_* or AWS_* variable leaks into a test; AWS credentials are fakes,
    so nothing can reach a real account; the working folder is the test's own."""
    for name in list(os.environ):
        if name.startswith(("METRIC_STREAM_", "AWS_")):
            monkeypatch.delenv(name)
    for name, value in _AWS_TEST_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def make_services(kind: str, tmp_path: Path, clock: ManualClock, **overrides: object) -> Services:
    options: dict[str, object] = {"queue_max_receives": 2, "queue_visibility_timeout": 30}
    options.update(overrides)
    if kind == "aws":
        settings = Settings(backend="aws", table_name="ms-test", bucket_name="ms-test-blobs",
                            queue_prefix="ms-test-", **options)  # type: ignore[arg-type]
    else:
        settings = Settings(backend="embedded", home=tmp_path / "home", **options)  # type: ignore[arg-type]
    services = build_services(settings, clock=clock)
    services.init()
    return services


@pytest.fixture(params=["embedded", "aws"])
def services(
    request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock
) -> Iterator[Services]:
    """The services on each backend: embedded, and AWS under moto's in-process mock."""
    if request.param == "aws":
        from moto import mock_aws

        with mock_aws():
            yield make_services("aws", tmp_path, clock)
    else:
        yield make_services("embedded", tmp_path, clock)
