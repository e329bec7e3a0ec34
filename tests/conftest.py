"""Shared fixtures: a clean environment per test, and the services on every backend."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


TEST_RECORD_KEY = "bWV0cmljLXN0cmVhbSB0ZXN0IHJlY29yZCBrZXkgMzI="  # 32 bytes, base64
"""The aws backend's record key in the tests (the embedded backend makes its own)."""

LLM_KEY_VARIABLES = ("OPENROUTER_API_KEY", "GEMINI_API_KEY", "ANTHROPIC_API_KEY")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No METRIC_STREAM_* or AWS_* variable leaks into a test; AWS credentials are fakes,
    so nothing can reach a real account; the working folder is the test's own."""
    for name in list(os.environ):
        if name.startswith(("METRIC_STREAM_", "AWS_")) or name in LLM_KEY_VARIABLES:
            monkeypatch.delenv(name)
    for name, value in _AWS_TEST_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)


_MOTO_DYNAMODB = threading.Lock()


@pytest.fixture(autouse=True)
def clean_logging() -> Iterator[None]:
    """A command run in-process sets up logging (`metric_stream.logs`): undone after
    each test, so that no test's handler, level or warning capture leaks into the next."""
    root = logging.getLogger()
    level = root.level
    yield
    for handler in [h for h in root.handlers if type(h).__module__ == "metric_stream.logs"]:
        root.removeHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)


@pytest.fixture(autouse=True)
def moto_dynamodb_is_atomic(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real DynamoDB applies each request to an item atomically; moto's in-process
    backend reads, checks and writes an item without a lock, so concurrent tests would
    see lost updates DynamoDB never shows. Serialise moto's DynamoDB requests (only
    those: SQS long polls stay concurrent)."""
    from moto.core.botocore_stubber import BotocoreStubber

    original = BotocoreStubber.process_request

    def serialised(self: Any, request: Any) -> Any:
        if "dynamodb" not in str(request.url):
            return original(self, request)
        with _MOTO_DYNAMODB:
            return original(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", serialised)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def make_services(kind: str, tmp_path: Path, clock: ManualClock, **overrides: object) -> Services:
    options: dict[str, object] = {"queue_max_receives": 2, "queue_visibility_timeout": 30}
    options.update(overrides)
    if kind == "aws":  # the tests' sources and sinks listen on loopback
        options.setdefault("outbound_allow_loopback", True)
        options.setdefault("record_key", TEST_RECORD_KEY)
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
