"""Log lines (`metric_stream.logs`): text or JSON, each with the trace id of the job
being worked on and the id of the request being answered, kept across thread pools,
asyncio tasks and forked delivery senders; exceptions compact; settings from options
or the environment."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from metric_stream.delivery.base import Channel, Outgoing, SendContext, SendResult
from metric_stream.delivery.engine import SHARD_MIN, Engine, Job, run_jobs
from metric_stream.errors import InvalidInput
from metric_stream.logs import (
    ContextThreadPool,
    configure_logging,
    current_trace_id,
    environment,
    job_context,
    request_context,
    trace_id_of,
    traced,
)
from metric_stream.models.config import RetryPolicy
from metric_stream.ports import Message
from metric_stream.settings import Settings

TRACE = "trace_20261129_060000_abcdef"
log = logging.getLogger("metric_stream.test")


def lines(err: str) -> list[dict[str, Any]]:
    """Every stderr line, each of which must be one JSON object."""
    return [json.loads(line) for line in err.splitlines()]


def test_json_lines_carry_the_trace_and_request_ids_and_extra_fields(
        capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "info")
    log.info("outside")
    with request_context("req-1"), job_context(TRACE):
        log.warning("inside %s", "a job", extra={"stage": "analysis", "empty": None})
    log.debug("below the level")
    first, second = lines(capsys.readouterr().err)
    assert set(first) == {"time", "level", "logger", "message"}
    assert first["message"] == "outside" and first["level"] == "INFO"
    assert first["logger"] == "metric_stream.test" and first["time"].endswith("Z")
    assert second == {**second, "level": "WARNING", "message": "inside a job",
                      "traceId": TRACE, "requestId": "req-1", "stage": "analysis"}
    assert "empty" not in second


def test_an_exception_is_compact_and_its_traceback_only_at_debug(
        capsys: pytest.CaptureFixture[str]) -> None:
    for level, traceback_shown in (("info", False), ("debug", True)):
        configure_logging("json", level)
        try:
            raise ValueError("the value is wrong\nover two lines")
        except ValueError:
            log.exception("could not go on")
        [line] = lines(capsys.readouterr().err)
        assert line["message"] == "could not go on"
        assert line["exc"]["type"] == "ValueError"
        assert line["exc"]["message"] == "the value is wrong\nover two lines"
        assert ("traceback" in line["exc"]) is traceback_shown
        if traceback_shown:
            assert "Traceback (most recent call last)" in line["exc"]["traceback"]


def test_text_lines_show_the_trace_id_in_brackets(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("text", "info")
    with job_context(TRACE), request_context("req-2"):
        try:
            raise KeyError("k")
        except KeyError:
            log.error("job %s failed", TRACE, exc_info=True)
    log.info("no job")
    first, second = capsys.readouterr().err.splitlines()
    assert f" ERROR metric_stream.test [{TRACE}] [req req-2] job {TRACE} failed" in first
    assert first.endswith("| KeyError: 'k'")
    assert second.endswith(" INFO metric_stream.test no job")


def test_secrets_stay_masked(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "info")
    settings = Settings(admin_key=SecretStr("s3cr3t-admin"))  # type: ignore[call-arg]
    log.info("key %s", settings.admin_key, extra={"key": settings.admin_key})
    assert "s3cr3t-admin" not in capsys.readouterr().err


def test_the_environment_chooses_unless_an_option_is_given(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("METRIC_STREAM_LOG_FORMAT", "JSON")
    monkeypatch.setenv("METRIC_STREAM_LOG_LEVEL", "error")
    configure_logging()
    log.warning("dropped")
    log.error("kept")
    assert [line["message"] for line in lines(capsys.readouterr().err)] == ["kept"]
    assert environment() == {"METRIC_STREAM_LOG_FORMAT": "json",
                             "METRIC_STREAM_LOG_LEVEL": "error"}
    configure_logging("text", "info")  # replaces the first set-up: one handler, one line
    log.info("text now")
    assert capsys.readouterr().err.count("text now") == 1
    monkeypatch.setenv("METRIC_STREAM_LOG_FORMAT", "yaml")
    with pytest.raises(InvalidInput) as refused:
        configure_logging()
    assert refused.value.field == "METRIC_STREAM_LOG_FORMAT" and "'yaml'" in refused.value.message


def test_what_names_a_job() -> None:
    assert trace_id_of(TRACE) == TRACE
    assert trace_id_of({"traceId": TRACE}) == TRACE
    assert trace_id_of(Message("m1", {"traceId": TRACE}, "r1", 1)) == TRACE
    assert trace_id_of({"traceId": 7}) is None and trace_id_of(None) is None

    @traced("body")
    def seen(queue: str, body: Any) -> str | None:
        return current_trace_id()

    assert seen("analysis", {"traceId": TRACE}) == TRACE
    assert seen("analysis", body={"traceId": TRACE}) == TRACE
    assert seen("analysis", {"traceId": "bad id\nwith a line break"}) is None
    assert current_trace_id() is None


def test_thread_pools_asyncio_tasks_and_threads_keep_the_job() -> None:
    def in_thread() -> str | None:
        return current_trace_id()

    async def tasks() -> list[str | None]:
        async def one() -> str | None:
            await asyncio.sleep(0)
            return current_trace_id()

        return [*await asyncio.gather(one(), one()), await asyncio.to_thread(in_thread)]

    with job_context(TRACE):
        with ContextThreadPool(max_workers=4) as pool:
            submitted = [pool.submit(in_thread) for _ in range(8)]
            mapped = list(pool.map(lambda _: in_thread(), range(8)))
        from_asyncio = asyncio.run(tasks())
    assert {f.result() for f in submitted} == {TRACE} and set(mapped) == {TRACE}
    assert from_asyncio == [TRACE] * 3
    seen: list[str | None] = []
    thread = threading.Thread(target=lambda: seen.append(current_trace_id()))
    thread.start()
    thread.join()
    assert seen == [None]  # a plain thread starts empty: ContextThreadPool is what keeps it


class _FileHandler(logging.Handler):
    """Appends each record's trace id to a file: a forked process's lines land too."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def emit(self, record: logging.LogRecord) -> None:
        with self.path.open("a") as out:
            out.write(json.dumps({"traceId": getattr(record, "traceId", None),
                                  "message": record.getMessage()}) + "\n")


@dataclass(frozen=True)
class _Logging(Channel):
    kind = "local"

    @property
    def host(self) -> str:
        return "local"

    async def send(self, out: Outgoing, ctx: SendContext) -> SendResult:
        if out.endpoint_id.endswith("0"):
            log.info("sent %s", out.endpoint_id)
        return SendResult(ok=True, status=200)


def test_forked_delivery_senders_log_with_the_job_trace_id(tmp_path: Path) -> None:
    from metric_stream.logs import ContextFilter

    path = tmp_path / "lines.jsonl"
    handler = _FileHandler(path)
    handler.addFilter(ContextFilter())
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        jobs = [Job(Outgoing(trace_id=TRACE, endpoint_id=f"e{i:05d}", messages={}), _Logging())
                for i in range(SHARD_MIN)]
        with job_context(TRACE):
            sent = run_jobs(Engine(Settings(), RetryPolicy(retries=0, delays_s=[])), jobs,
                            lambda outcome: None, processes=2)
    finally:
        log.removeHandler(handler)
        log.setLevel(logging.NOTSET)
    assert sent == SHARD_MIN
    found = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(found) == SHARD_MIN // 10  # every tenth send logs, from the two senders
    assert {line["traceId"] for line in found} == {TRACE}
