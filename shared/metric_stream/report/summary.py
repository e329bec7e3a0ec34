"""The brief facts of a job's report that every channel message is drawn from.

`build_summary` reads the consolidated analytics written by the analysis stage
(`services.analysis`: `alerts`, `topMovers`); `summary_to_wire` is the summary as the
webhook channel sends it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

MAX_MOVERS = 5
MOVER_WINDOWS = ("1d", "7d")  # the 1-day movers, or the 7-day ones when there are none

AlertLevel = Literal["high", "low"]


@dataclass(frozen=True)
class AlertLine:
    """A KPI's latest value above its `high` or below its `low` threshold."""

    kpi_id: str
    name: str
    level: AlertLevel
    value: float
    threshold: float
    unit: str


@dataclass(frozen=True)
class MoverLine:
    """One of the KPIs that moved most over `window_days`."""

    kpi_id: str
    name: str
    change_pct: float | None
    change_abs: float | None
    value: float
    unit: str
    window_days: int = 1


@dataclass(frozen=True)
class MissingLine:
    """A KPI of the job that could not be collected, and why."""

    kpi_id: str
    name: str
    reason: str


@dataclass(frozen=True)
class ReportSummary:
    """What a job's report says in brief. `headline` is the consolidated LLM synthesis
    (AI-generated), None when the LLM was off or failed; `created_at` is UTC."""

    trace_id: str
    created_at: datetime
    status: str
    demo: bool
    kpi_count: int
    alerts: tuple[AlertLine, ...] = ()
    movers: tuple[MoverLine, ...] = ()
    missing: tuple[MissingLine, ...] = ()
    headline: str | None = None
    llm_status: str = "off"
    report_url: str | None = None
    disclaimer: str | None = None

    @property
    def partial(self) -> bool:
        return self.status == "partial" or bool(self.missing)


def build_summary(
    *,
    trace_id: str,
    created_at: datetime,
    status: str,
    demo: bool,
    analytics: Mapping[str, Any],
    names: Mapping[str, str],
    units: Mapping[str, str],
    latest: Mapping[str, float],
    missing: Mapping[str, str],
    headline: str | None = None,
    llm_status: str = "off",
    report_url: str | None = None,
    disclaimer: str | None = None,
) -> ReportSummary:
    """The summary of a job from its consolidated analytics; unknown names fall back to
    the KPI id, malformed alert or mover entries are left out."""
    return ReportSummary(
        trace_id=trace_id,
        created_at=created_at,
        status=status,
        demo=demo,
        kpi_count=len(latest),
        alerts=tuple(_alerts(analytics.get("alerts"), names, units)),
        movers=tuple(_movers(analytics.get("topMovers"), names, units, latest)),
        missing=tuple(MissingLine(k, names.get(k, k), reason) for k, reason in missing.items()),
        headline=headline or None,
        llm_status=llm_status,
        report_url=report_url or None,
        disclaimer=disclaimer or None,
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _entries(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        return []
    return [entry for entry in value if isinstance(entry, Mapping)]


def _alerts(
    raw: Any, names: Mapping[str, str], units: Mapping[str, str]
) -> list[AlertLine]:
    lines = []
    for entry in _entries(raw):
        kpi_id, level = entry.get("kpiId"), entry.get("kind")
        value, threshold = _number(entry.get("value")), _number(entry.get("threshold"))
        if not isinstance(kpi_id, str) or level not in ("high", "low"):
            continue
        if value is None or threshold is None:
            continue
        lines.append(AlertLine(kpi_id, names.get(kpi_id, kpi_id), level, value, threshold,
                               units.get(kpi_id, "")))
    return lines


def _movers(
    raw: Any, names: Mapping[str, str], units: Mapping[str, str], latest: Mapping[str, float]
) -> list[MoverLine]:
    windows = raw if isinstance(raw, Mapping) else {}
    for window in MOVER_WINDOWS:
        lines = [line for entry in _entries(windows.get(window))
                 if (line := _mover(entry, window, names, units, latest)) is not None]
        if lines:
            return lines[:MAX_MOVERS]
    return []


def _mover(
    entry: Mapping[str, Any],
    window: str,
    names: Mapping[str, str],
    units: Mapping[str, str],
    latest: Mapping[str, float],
) -> MoverLine | None:
    kpi_id = entry.get("kpiId")
    if not isinstance(kpi_id, str):
        return None
    value = _number(entry.get("latestValue"))
    if value is None:
        value = _number(latest.get(kpi_id))
    if value is None:
        return None
    days = entry.get("windowDays")
    return MoverLine(
        kpi_id=kpi_id,
        name=names.get(kpi_id, kpi_id),
        change_pct=_number(entry.get("percent")),
        change_abs=_number(entry.get("absolute")),
        value=value,
        unit=units.get(kpi_id, ""),
        window_days=days if isinstance(days, int) and days > 0 else int(window[:-1]),
    )


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z` (a naive datetime is taken as UTC)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def summary_to_wire(summary: ReportSummary) -> dict[str, Any]:
    """The summary as a JSON-safe dict with camelCase keys (non-finite numbers as null)."""
    return {
        "traceId": summary.trace_id,
        "createdAt": iso_utc(summary.created_at),
        "status": summary.status,
        "partial": summary.partial,
        "demo": summary.demo,
        "kpiCount": summary.kpi_count,
        "alerts": [
            {"kpiId": a.kpi_id, "name": a.name, "level": a.level, "value": _number(a.value),
             "threshold": _number(a.threshold), "unit": a.unit}
            for a in summary.alerts
        ],
        "movers": [
            {"kpiId": m.kpi_id, "name": m.name, "windowDays": m.window_days,
             "changePct": _number(m.change_pct), "changeAbs": _number(m.change_abs),
             "value": _number(m.value), "unit": m.unit}
            for m in summary.movers
        ],
        "missing": [{"kpiId": m.kpi_id, "name": m.name, "reason": m.reason}
                    for m in summary.missing],
        "headline": summary.headline,
        "headlineAiGenerated": summary.headline is not None,
        "llmStatus": summary.llm_status,
        "reportUrl": summary.report_url,
        "disclaimer": summary.disclaimer,
    }
