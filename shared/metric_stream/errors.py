"""Every error metric-stream raises on purpose, and the HTTP status each one maps to.

    MetricStreamError
    ├── InvalidInput             400  malformed input; carries the field path(s) and reasons
    │   └── PayloadTooLarge      413
    ├── Unauthorized             401  (the message never says why, on purpose)
    ├── Forbidden                403
    ├── NotFound                 404
    ├── Conflict                 409
    │   ├── AlreadyExists        409  create of an id that exists
    │   ├── PointConflict        409  another value already stored for a KPI and timestamp
    │   └── ConditionFailed      409  a conditional storage write lost its condition
    ├── ConfigurationError       500  the operator's settings cannot work (named field)
    ├── UpstreamError            502  a service called on the operator's behalf (n8n) failed
    ├── FeatureUnavailable       503  a feature's settings are missing (e.g. n8n's API URL)
    └── StorageError             503  the backend failed; nothing was half-written
        ├── StorageUnavailable   503  the backend cannot be reached or written at all
        └── UnreadableRecord     503  a sealed record does not open with its key (altered)

`http_status` is the one place that maps errors to status codes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldProblem:
    """One thing wrong with an input: where (a dotted path, `data.btc.value`) and why."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class MetricStreamError(Exception):
    """Base of all errors raised on purpose; `code` is the stable machine-readable name."""

    code = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(MetricStreamError):
    code = "invalid_input"

    def __init__(self, problems: Sequence[FieldProblem] | str, *, field: str | None = None):
        if isinstance(problems, str):
            problems = [FieldProblem(field or "", problems)]
        self.problems: tuple[FieldProblem, ...] = tuple(problems)
        first = self.problems[0] if self.problems else FieldProblem("", "invalid input")
        message = "; ".join(str(p) for p in self.problems) or "invalid input"
        super().__init__(message, field=first.field or None)


class PayloadTooLarge(InvalidInput):
    code = "payload_too_large"


class Unauthorized(MetricStreamError):
    code = "unauthorized"


class Forbidden(MetricStreamError):
    code = "forbidden"


class NotFound(MetricStreamError):
    code = "not_found"


class Conflict(MetricStreamError):
    code = "conflict"


class AlreadyExists(Conflict):
    code = "already_exists"


class PointConflict(Conflict):
    code = "point_conflict"


class ConditionFailed(Conflict):
    """A conditional write (or one op of an atomic batch) found its condition false.

    `indexes` are the positions of the failing operations in the batch; nothing of
    the batch was written.
    """

    code = "condition_failed"

    def __init__(self, indexes: Iterable[int], message: str = "condition failed") -> None:
        self.indexes: tuple[int, ...] = tuple(sorted(indexes))
        super().__init__(f"{message} (operations {list(self.indexes)})")


class ConfigurationError(MetricStreamError):
    code = "configuration_error"


class UpstreamError(MetricStreamError):
    code = "upstream_error"


class FeatureUnavailable(MetricStreamError):
    code = "unavailable"


class StorageError(MetricStreamError):
    code = "storage_error"


class StorageUnavailable(StorageError):
    code = "storage_unavailable"


class UnreadableRecord(StorageError):
    """A record's sealed fields failed authentication with the key that sealed them:
    the record was altered or damaged (the message names it, never its secrets)."""

    code = "unreadable_record"


_STATUS: tuple[tuple[type[MetricStreamError], int], ...] = (
    (PayloadTooLarge, 413),
    (InvalidInput, 400),
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (ConfigurationError, 500),
    (UpstreamError, 502),
    (FeatureUnavailable, 503),
    (StorageError, 503),
)


def http_status(error: BaseException) -> int:
    """The HTTP status code for an error (500 for anything not raised on purpose)."""
    for kind, status in _STATUS:
        if isinstance(error, kind):
            return status
    return 500


def error_body(error: MetricStreamError) -> dict[str, dict[str, str]]:
    """The JSON error body every entry point answers with: `{error: {code, message, field?}}`."""
    body = {"code": error.code, "message": error.message}
    if error.field:
        body["field"] = error.field
    return {"error": body}
