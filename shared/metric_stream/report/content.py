"""What goes into a job's report: plain data, built by the packaging stage from the
stored packages and written out by `pdf.render_pdf`. Nothing here touches storage or
reportlab, so the report can be built and tested from values alone."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from metric_stream.charts.render import ChartSpec

LlmStatus = Literal["ok", "off", "failed", "partial", "skipped"]


@dataclass(frozen=True)
class LlmReading:
    """One chain's outcome: its texts by step kind when `ok`, else why there are none."""

    status: Literal["ok", "failed", "skipped", "off"]
    texts: Mapping[str, str] = field(default_factory=dict)
    models: Sequence[str] = ()
    reason: str | None = None

    @property
    def summary(self) -> str | None:
        """The synthesis, or the last step's text when the chain has no synthesis."""
        if not self.texts:
            return None
        return self.texts.get("synthesis") or list(self.texts.values())[-1]

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any] | None) -> LlmReading | None:
        if not wire:
            return None
        texts = wire.get("texts") or {}
        return cls(status=wire.get("status", "failed"),
                   texts={str(k): str(v) for k, v in texts.items()},
                   models=tuple(str(m) for m in wire.get("models") or ()),
                   reason=wire.get("reason"))


@dataclass(frozen=True)
class KpiSection:
    kpi_id: str
    name: str
    value: float
    timestamp: datetime
    analytics: Mapping[str, Any]
    """`SeriesAnalytics.to_wire()`."""
    unit: str = ""
    description: str = ""
    source: str = ""
    chart: ChartSpec | None = None
    chart_note: str | None = None
    """Why there is no chart (the configured fallback text and the reason)."""
    llm: LlmReading | None = None


@dataclass(frozen=True)
class MissingKpi:
    kpi_id: str
    name: str
    reason: str


@dataclass(frozen=True)
class StageTime:
    stage: str
    started_at: datetime
    finished_at: datetime | None = None

    @property
    def seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class SourceLine:
    name: str
    source: str
    kpi_ids: Sequence[str]


@dataclass(frozen=True)
class ReportData:
    trace_id: str
    created_at: datetime
    status: str
    sections: Sequence[KpiSection]
    demo: bool = False
    missing: Sequence[MissingKpi] = ()
    disclaimer: str = ""
    consolidated: Mapping[str, Any] = field(default_factory=dict)
    """The consolidated analytics: alerts, topMovers, correlations, outliers."""
    consolidated_llm: LlmReading | None = None
    llm_status: LlmStatus = "off"
    llm_usage: Mapping[str, Any] = field(default_factory=dict)
    timings: Sequence[StageTime] = ()
    sources: Sequence[SourceLine] = ()
    names: Mapping[str, str] = field(default_factory=dict)
    units: Mapping[str, str] = field(default_factory=dict)

    def name_of(self, kpi_id: str) -> str:
        return self.names.get(kpi_id, kpi_id)
