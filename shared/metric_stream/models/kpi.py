"""The KPI registry entry: what a KPI is, where its values come from, how it is analysed."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, field_validator, model_validator

from metric_stream.models.base import (
    AdminModel,
    FiniteNumber,
    Id,
    KpiId,
    Timestamp,
    unique_ids,
)


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL")
    return value


HttpUrl = Annotated[str, Field(strict=True, max_length=2048), AfterValidator(_check_http_url)]


class N8nSource(AdminModel):
    """Values come from an n8n workflow, triggered by POSTing to its webhook."""

    kind: Literal["n8n"] = "n8n"
    webhook_url: HttpUrl
    workflow_id: str | None = Field(default=None, max_length=128)


class CollectorSource(AdminModel):
    """Values come from a built-in collector, with its parameters."""

    kind: Literal["collector"] = "collector"
    collector: Id
    params: dict[str, Any] = Field(default_factory=dict)


KpiSource = Annotated[N8nSource | CollectorSource, Field(discriminator="kind")]

ChartType = Literal["line", "bar", "candlestick", "multi-line"]


class Thresholds(AdminModel):
    """Alert bounds: a value above `high` or below `low` raises an alert."""

    high: FiniteNumber | None = None
    low: FiniteNumber | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.high is not None and self.low is not None and self.low >= self.high:
            raise ValueError("low must be below high")
        return self


class AnalysisConfig(Thresholds):
    """How a KPI is charted and analysed; `indicators` holds per-KPI thresholds of a
    multi-KPI source, `analysisChain` overrides the system's default chain."""

    chart_type: ChartType = "line"
    indicators: dict[KpiId, Thresholds] = Field(default_factory=dict)
    analysis_chain: Id | None = None


class KpiDefinition(AdminModel):
    """One registry entry. A multi-KPI source (e.g. `cbbi-multi`) lists in `kpiIds`
    the KPIs it yields; a single KPI leaves it empty and yields its own id."""

    id: KpiId
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    kpi_type: Id
    active: bool = True
    source: KpiSource
    kpi_ids: Annotated[list[KpiId], AfterValidator(unique_ids)] = Field(default_factory=list)
    unit: str = Field(default="", max_length=32)
    analysis_config: AnalysisConfig = Field(default_factory=AnalysisConfig)
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @model_validator(mode="after")
    def _indicators_are_yielded(self) -> KpiDefinition:
        unknown = sorted(set(self.analysis_config.indicators) - set(self.yields))
        if unknown:
            raise ValueError(
                f"analysisConfig.indicators names {unknown}, which this source does not yield"
            )
        return self

    @property
    def yields(self) -> list[str]:
        """The KPI ids whose points this entry produces."""
        return list(self.kpi_ids) or [self.id]

    def thresholds_for(self, kpi_id: str) -> Thresholds:
        specific = self.analysis_config.indicators.get(kpi_id)
        if specific is not None:
            return specific
        return Thresholds(high=self.analysis_config.high, low=self.analysis_config.low)

    def stamped(self, now: datetime) -> KpiDefinition:
        return self.model_copy(update={"created_at": self.created_at or now, "updated_at": now})
