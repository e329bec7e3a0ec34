"""The building blocks every model shares: strict numbers, zoned timestamps, ids.

Wire models (what n8n workflows and collectors send) keep unknown fields; admin
models (registry, config) refuse them, so that a typo in a config field is an
error rather than a silently ignored setting.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel

from metric_stream.errors import FieldProblem, InvalidInput

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
ID_RULE = "1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"

# DynamoDB stores numbers with 38 digits between 1e-130 and 1e126; keeping every value
# well inside that range means both backends store exactly the same points.
MAX_MAGNITUDE = 1e100
MIN_MAGNITUDE = 1e-100

_ISO_PREFIX = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _check_id(value: str) -> str:
    if not ID_PATTERN.fullmatch(value):  # not .match: its `$` accepts a trailing newline
        raise ValueError(f"must be {ID_RULE}")
    return value


def _check_number(value: float) -> float:
    magnitude = abs(value)
    if magnitude > MAX_MAGNITUDE or (magnitude and magnitude < MIN_MAGNITUDE):
        raise ValueError("must be 0 or have a magnitude between 1e-100 and 1e100")
    return float(value)


def _check_timestamp_input(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_PREFIX.match(value):
        raise ValueError(
            "must be an ISO 8601 date and time with a timezone, e.g. 2026-11-29T06:00:00Z"
        )
    return value


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+05:00 is before year 1 in UTC
        raise ValueError("is out of range once converted to UTC") from None


# The validators are AfterValidators (for their own messages), so the JSON schemas
# (`metric-stream schemas`) state the same rules explicitly.
Id = Annotated[
    str,
    Field(strict=True),
    AfterValidator(_check_id),
    WithJsonSchema({"type": "string", "pattern": ID_PATTERN.pattern}),
]
KpiId = Id
TraceId = Id
FiniteNumber = Annotated[
    float,
    Field(strict=True, allow_inf_nan=False),
    AfterValidator(_check_number),
    WithJsonSchema({"type": "number", "minimum": -MAX_MAGNITUDE, "maximum": MAX_MAGNITUDE}),
]
Timestamp = Annotated[
    AwareDatetime, BeforeValidator(_check_timestamp_input), AfterValidator(_to_utc)
]


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """Fixed-width UTC ISO 8601 text: sorts as text in time order (used in storage keys)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def unique_ids(values: list[str]) -> list[str]:
    seen: set[str] = set()
    doubles = [v for v in values if v in seen or seen.add(v)]  # type: ignore[func-returns-value]
    if doubles:
        raise ValueError(f"lists {sorted(set(doubles))} more than once")
    return values


class WireModel(BaseModel):
    """A model of the data contract: camelCase on the wire, unknown fields kept."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        allow_inf_nan=False,
        ser_json_inf_nan="strings",
    )

    def to_wire(self) -> dict[str, Any]:
        """The camelCase JSON-compatible form, without unset optional fields."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class AdminModel(WireModel):
    """A registry or configuration model: camelCase, unknown fields refused."""

    model_config = ConfigDict(extra="forbid")


M = TypeVar("M", bound=BaseModel)

# Tags of the tagged unions (see `results.DataValue`); they are not fields, so they
# are left out of the field paths shown to users.
UNION_TAGS = frozenset({"number", "object"})


def field_path(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if not (isinstance(p, str) and p in UNION_TAGS)]
    return ".".join(parts)


def problems_of(error: ValidationError) -> list[FieldProblem]:
    """Pydantic's errors as field paths (camelCase, as the sender wrote them) and reasons."""
    problems = []
    for item in error.errors(include_url=False):
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "missing":
            message = "is required"
        elif item["type"] == "extra_forbidden":
            message = "is not a known field"
        elif item["type"] == "timezone_aware":
            message = "must carry a timezone, e.g. 2026-11-29T06:00:00Z or +00:00"
        problems.append(FieldProblem(field_path(item["loc"]), message))
    return problems


def parse(model: type[M], data: Any) -> M:
    """Validate `data` as `model`, raising `InvalidInput` that names every bad field."""
    if not isinstance(data, Mapping):
        raise InvalidInput(f"must be a JSON object, not {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(problems_of(exc)) from None
