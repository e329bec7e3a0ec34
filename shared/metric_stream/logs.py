"""Logging, set up in one place for every entry point (the CLI, `serve` and its HTTP
worker processes, the Lambda functions): readable text lines or JSON lines, each one
carrying the trace id of the job being worked on and the id of the HTTP request being
answered.

The ids live in context variables, set by `job_context(traceId)` around the work on a
job (or `@traced(param)` on a function whose argument names the job) and by
`request_context(requestId)` around a request. Asyncio tasks and `asyncio.to_thread`
keep them by themselves, a forked process inherits them, and a thread pool keeps them
when it is a `ContextThreadPool`.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import json
import logging
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

from metric_stream.errors import InvalidInput

FORMATS = ("text", "json")
LEVELS = ("debug", "info", "warning", "error")
FORMAT_ENV, LEVEL_ENV = "METRIC_STREAM_LOG_FORMAT", "METRIC_STREAM_LOG_LEVEL"

_trace_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "metric_stream_trace_id", default=None)
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "metric_stream_request_id", default=None)
_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # what may go on a line unescaped

P = ParamSpec("P")
R = TypeVar("R")


# ---------------------------------------------------------------- the context
def current_trace_id() -> str | None:
    return _trace_id.get()


def current_request_id() -> str | None:
    return _request_id.get()


@contextmanager
def _bound(var: contextvars.ContextVar[str | None], value: str | None) -> Iterator[None]:
    if value is None or not _ID.match(value):  # nothing to say, or not an id: unchanged
        yield
        return
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


def job_context(trace_id: str | None) -> AbstractContextManager[None]:
    """Every line logged inside carries `traceId` (None, or a value that is not an id,
    leaves the context as it was)."""
    return _bound(_trace_id, trace_id)


def request_context(request_id: str | None) -> AbstractContextManager[None]:
    """Every line logged inside carries `requestId`."""
    return _bound(_request_id, request_id)


def trace_id_of(value: object) -> str | None:
    """The trace id a job argument names: a trace id itself, a job (anything with a
    `trace_id`), a message body's `traceId`, or a queue message's body's."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        found = value.get("traceId")
        return found if isinstance(found, str) else None
    found = getattr(value, "trace_id", None)
    if isinstance(found, str):
        return found
    body = getattr(value, "body", None)
    return trace_id_of(body) if isinstance(body, Mapping) else None


def traced(param: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Run the decorated function in the job context of its argument `param` (a trace
    id, a job, a message body or a queue message: see `trace_id_of`)."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        index = list(inspect.signature(function).parameters).index(param)

        @functools.wraps(function)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            value = args[index] if len(args) > index else kwargs.get(param)
            with job_context(trace_id_of(value)):
                return function(*args, **kwargs)

        return run

    return decorate


class ContextThreadPool(ThreadPoolExecutor):
    """A thread pool whose tasks run in a copy of the submitter's context, so their log
    lines keep the job's trace id and the request's id."""

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        return super().submit(contextvars.copy_context().run, fn, *args, **kwargs)


# ---------------------------------------------------------------- the lines
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "traceId", "requestId", "taskName",
    "color_message"}  # uvicorn's message with terminal colours


class ContextFilter(logging.Filter):
    """Puts the current `traceId` and `requestId` on every record (unless the call
    named them in `extra`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "traceId", None) is None:
            record.traceId = _trace_id.get()
        if getattr(record, "requestId", None) is None:
            record.requestId = _request_id.get()
        return True


def _time(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(record.msecs):03d}Z"


def _exception(record: logging.LogRecord, with_traceback: bool) -> dict[str, str] | None:
    if not record.exc_info or record.exc_info[0] is None:
        return None
    kind, error, trace = record.exc_info
    shown = {"type": kind.__name__, "message": str(error)[:1000]}
    if with_traceback:
        shown["traceback"] = "".join(traceback.format_exception(kind, error, trace))
    return shown


def _extra(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items()
            if k not in _STANDARD and not k.startswith("_") and v is not None}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: `time`, `level`, `logger`, `message`, `traceId` and
    `requestId` when there are, the call's `extra` fields, and `exc` (type and message;
    the traceback too when `tracebacks`)."""

    def __init__(self, *, tracebacks: bool = False) -> None:
        super().__init__()
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"time": _time(record), "level": record.levelname,
                                "logger": record.name, "message": record.getMessage()}
        for name in ("traceId", "requestId"):
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        line.update(_extra(record))
        error = _exception(record, self.tracebacks)
        if error is not None:
            line["exc"] = error
        if record.stack_info and self.tracebacks:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [traceId] [req requestId] message | Type: message`, the
    traceback on the following lines when `tracebacks`."""

    def __init__(self, *, tracebacks: bool = False) -> None:
        super().__init__()
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        parts = [_time(record), record.levelname, record.name]
        trace_id = getattr(record, "traceId", None)
        if trace_id is not None:
            parts.append(f"[{trace_id}]")
        request_id = getattr(record, "requestId", None)
        if request_id is not None:
            parts.append(f"[req {request_id}]")
        text = " ".join([*parts, record.getMessage()])
        error = _exception(record, self.tracebacks)
        if error is not None:
            text += f" | {error['type']}: {error['message']}"
            if "traceback" in error:
                text += "\n" + error["traceback"].rstrip()
        return text


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time (as `logging.lastResort` does),
    so a replaced or captured stderr never leaves it writing to a closed stream."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


# ---------------------------------------------------------------- set up
_active: dict[str, str] = {}


def _choice(given: str | None, variable: str, default: str, allowed: tuple[str, ...],
            option: str) -> str:
    value = (given or os.environ.get(variable) or default).strip().lower()
    if value not in allowed:
        source = option if given else variable
        raise InvalidInput(f"{value!r} is not one of {', '.join(allowed)}", field=source)
    return value


def configure_logging(log_format: str | None = None, level: str | None = None, *,
                      default_format: str = "text", default_level: str = "info",
                      replace_handlers: bool = False, capture_warnings: bool = False) -> None:
    """Send every log line to stderr as text or JSON, at `level`: each given value wins
    over `METRIC_STREAM_LOG_FORMAT` / `METRIC_STREAM_LOG_LEVEL`, which win over the
    defaults. Calling it again replaces what an earlier call set up; with
    `replace_handlers` every other handler of the root logger goes too (the Lambda
    runtime's own). `InvalidInput` names a value that is not a format or level."""
    _active.clear()
    chosen_format = _choice(log_format, FORMAT_ENV, default_format, FORMATS, "--log-format")
    chosen_level = _choice(level, LEVEL_ENV, default_level, LEVELS, "--log-level")
    numeric = logging.getLevelName(chosen_level.upper())
    tracebacks = numeric <= logging.DEBUG
    root = logging.getLogger()
    for handler in list(root.handlers):
        if replace_handlers or isinstance(handler, _StderrHandler):
            root.removeHandler(handler)
    handler = _StderrHandler()
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter(tracebacks=tracebacks) if chosen_format == "json"
                         else TextFormatter(tracebacks=tracebacks))
    root.addHandler(handler)
    root.setLevel(numeric)
    if capture_warnings:
        logging.captureWarnings(True)
    _active.update(format=chosen_format, level=chosen_level)


def active_format() -> str | None:
    """The format `configure_logging` chose, or None before it ran."""
    return _active.get("format")


def environment() -> dict[str, str]:
    """The variables that make another process log as this one does."""
    found = {FORMAT_ENV: _active.get("format"), LEVEL_ENV: _active.get("level")}
    return {name: value for name, value in found.items() if value}


def notice(message: str, logger: str = "metric_stream.cli") -> None:
    """A line the operator is always shown (the DEMO banner, ...): at INFO whatever the
    level, through the configured handler."""
    log = logging.getLogger(logger)
    record = log.makeRecord(logger, logging.INFO, "(notice)", 0, message, (), None)
    handlers: list[logging.Handler] = [h for h in logging.getLogger().handlers
                                       if isinstance(h, _StderrHandler)]
    for handler in handlers or [logging.lastResort or _StderrHandler()]:
        handler.handle(record)


__all__ = [
    "FORMATS",
    "LEVELS",
    "ContextFilter",
    "ContextThreadPool",
    "JsonFormatter",
    "TextFormatter",
    "active_format",
    "configure_logging",
    "current_request_id",
    "current_trace_id",
    "environment",
    "job_context",
    "notice",
    "request_context",
    "trace_id_of",
    "traced",
]
