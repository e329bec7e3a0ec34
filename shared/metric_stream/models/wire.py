"""What n8n workflows and collectors send and receive: triggers, results, error reports.

Field names are camelCase on the wire; unknown extra fields are kept. A single-KPI
result carries `kpiId`, a multi-KPI result carries `kpiIds` and a `data` object keyed
by KPI id; `parse_result` tells them apart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
)

from metric_stream.errors import InvalidInput
from metric_stream.models.base import (
    FiniteNumber,
    Id,
    KpiId,
    Timestamp,
    TraceId,
    WireModel,
    parse,
    unique_ids,
)
from metric_stream.models.kpi import HttpUrl

KpiIdList = Annotated[list[KpiId], Field(min_length=1, max_length=500), AfterValidator(unique_ids)]


class KpiTrigger(WireModel):
    """POSTed to a KPI's n8n webhook (or handed to its collector) to collect one KPI."""

    trace_id: TraceId
    kpi_id: KpiId
    timestamp: Timestamp
    kpi_type: Id
    metadata: dict[str, Any] | None = None


class MultiKpiTrigger(WireModel):
    """Triggers one source that yields several KPIs."""

    trace_id: TraceId
    kpi_ids: KpiIdList
    timestamp: Timestamp
    kpi_type: Id
    metadata: dict[str, Any] | None = None


class DataObject(WireModel):
    """`data` as an object: a numeric `value`; every other field is point metadata."""

    value: FiniteNumber

    @property
    def extras(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def _data_kind(value: Any) -> str:
    return "object" if isinstance(value, Mapping | DataObject) else "number"


DataValue = Annotated[
    Annotated[FiniteNumber, Tag("number")] | Annotated[DataObject, Tag("object")],
    Discriminator(_data_kind),
]


def value_of(data: float | DataObject) -> float:
    return data.value if isinstance(data, DataObject) else data


def extras_of(data: float | DataObject) -> dict[str, Any]:
    return data.extras if isinstance(data, DataObject) else {}


class ChartRef(WireModel):
    """A chart the workflow drew itself."""

    url: HttpUrl
    type: str = Field(max_length=64)
    time_range: str = Field(max_length=64)


class KpiResult(WireModel):
    """One KPI's value for a job: `data` is a number or `{value, ...}`."""

    trace_id: TraceId
    kpi_id: KpiId
    timestamp: Timestamp
    kpi_type: Id
    data: DataValue
    chart: ChartRef | None = None
    metadata: dict[str, Any] | None = None

    @property
    def values(self) -> dict[str, float]:
        return {self.kpi_id: value_of(self.data)}


class MultiKpiResult(WireModel):
    """One source's values for several KPIs: `data` maps every id of `kpiIds` to its value."""

    trace_id: TraceId
    timestamp: Timestamp
    kpi_type: Id
    kpi_ids: KpiIdList
    data: dict[KpiId, DataValue]
    metadata: dict[str, Any] | None = None

    @field_validator("data")
    @classmethod
    def _data_matches_ids(
        cls, data: dict[str, float | DataObject], info: ValidationInfo
    ) -> dict[str, float | DataObject]:
        kpi_ids = info.data.get("kpi_ids")
        if kpi_ids is None:  # kpiIds itself was invalid; its error says so
            return data
        missing = [k for k in kpi_ids if k not in data]
        extra = sorted(set(data) - set(kpi_ids))
        if missing:
            raise ValueError(f"has no value for {missing}, listed in kpiIds")
        if extra:
            raise ValueError(f"has values for {extra}, which kpiIds does not list")
        return data

    @property
    def values(self) -> dict[str, float]:
        return {k: value_of(self.data[k]) for k in self.kpi_ids}


def parse_result(payload: Any) -> KpiResult | MultiKpiResult:
    """A result payload as the model its shape asks for (`kpiId` or `kpiIds`)."""
    if isinstance(payload, Mapping):
        has_single, has_multi = "kpiId" in payload, "kpiIds" in payload
        if has_single and has_multi:
            raise InvalidInput("give either kpiId (one KPI) or kpiIds (several), not both",
                               field="kpiIds")
        if not has_single and not has_multi:
            raise InvalidInput("is required (or kpiIds for a multi-KPI result)", field="kpiId")
        if has_multi:
            return parse(MultiKpiResult, payload)
    return parse(KpiResult, payload)


class ErrorReport(WireModel):
    """A collection failure. `error` is free-form and kept whole (n8n sends `message`,
    `name`, `code`, `status`, `stack`); a bare string becomes `{message: ...}`."""

    trace_id: TraceId
    error: dict[str, Any]
    kpi_id: KpiId | None = None
    kpi_ids: KpiIdList | None = None
    timestamp: Timestamp | None = None
    retry_count: int | None = Field(default=None, ge=0, le=1000)
    component: str | None = Field(default=None, max_length=200)
    workflow_id: str | None = Field(default=None, max_length=128)
    execution_id: str | None = Field(default=None, max_length=128)

    @field_validator("error", mode="before")
    @classmethod
    def _wrap_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"message": value}
        return value

    @field_validator("workflow_id", "execution_id", mode="before")
    @classmethod
    def _id_text(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    # Field validators rather than a model validator, so the problem names its field.
    @field_validator("error")
    @classmethod
    def _not_empty(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            raise ValueError("must not be empty")
        return value

    @field_validator("kpi_ids")
    @classmethod
    def _one_kind_of_target(
        cls, value: list[str] | None, info: ValidationInfo
    ) -> list[str] | None:
        if value is not None and info.data.get("kpi_id") is not None:
            raise ValueError("give either kpiId (one KPI) or kpiIds (several), not both")
        return value

    @property
    def targets(self) -> list[str]:
        """The KPI ids this report is about (empty: the whole job's source)."""
        if self.kpi_id is not None:
            return [self.kpi_id]
        return list(self.kpi_ids or [])

    @property
    def message(self) -> str:
        """The human-readable reason, whatever shape the sender's error has."""
        for key in ("message", "description", "reason", "name", "code"):
            text = self.error.get(key)
            if isinstance(text, str) and text.strip():
                return text.strip()
        return json.dumps(self.error, sort_keys=True, default=str)[:500]
