"""Analytics across KPIs: the top movers and the pairwise correlations."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import combinations
from typing import Any, Literal, NamedTuple

from metric_stream.analytics.series import SeriesAnalytics
from metric_stream.models.timeseries import DataPoint

MIN_OVERLAP = 5


@dataclass(frozen=True)
class Mover:
    """One KPI's change over the window (see `series.Change`) and whether it alerts."""

    kpi_id: str
    window_days: int
    percent: float
    absolute: float
    latest_value: float
    alerting: bool

    def to_wire(self) -> dict[str, Any]:
        return {
            "kpiId": self.kpi_id,
            "windowDays": self.window_days,
            "percent": self.percent,
            "absolute": self.absolute,
            "latestValue": self.latest_value,
            "alerting": self.alerting,
        }


class Correlation(NamedTuple):
    """Pearson `r = sum(dx * dy) / sqrt(sum(dx²) * sum(dy²))` over the `n` days on which
    both KPIs have a value (`kpi_a < kpi_b`)."""

    kpi_a: str
    kpi_b: str
    r: float
    n: int

    def to_wire(self) -> dict[str, Any]:
        return {"kpiA": self.kpi_a, "kpiB": self.kpi_b, "r": self.r, "n": self.n}


def top_movers(
    analytics_by_kpi: Mapping[str, SeriesAnalytics],
    window: Literal[1, 7, 30] = 1,
    n: int = 5,
    *,
    alerts_first: bool = False,
) -> list[Mover]:
    """The `n` KPIs with the largest `|percent|` change over `window` days (ties by id);
    with `alerts_first`, KPIs with a threshold alert come before the others. KPIs
    without a percent change for the window are left out."""
    movers: list[Mover] = []
    for kpi_id, analytics in analytics_by_kpi.items():
        change = analytics.change(window)
        if change is None or change.percent is None or change.absolute is None:
            continue
        assert analytics.latest_value is not None
        movers.append(
            Mover(
                kpi_id,
                window,
                change.percent,
                change.absolute,
                analytics.latest_value,
                bool(analytics.alerts),
            )
        )
    movers.sort(key=lambda m: (alerts_first and not m.alerting, -abs(m.percent), m.kpi_id))
    return movers[:n]


def _day(moment: datetime) -> date:
    return moment.astimezone(UTC).date() if moment.tzinfo else moment.date()


def _daily_values(points: Sequence[DataPoint]) -> dict[date, float]:
    return {_day(p.timestamp): p.value for p in sorted(points, key=lambda p: p.timestamp)}


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson r, None when either side has zero variance."""
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    dxs = [x - mean_x for x in xs]
    dys = [y - mean_y for y in ys]
    sxx = sum(d * d for d in dxs)
    syy = sum(d * d for d in dys)
    if sxx == 0 or syy == 0:
        return None
    r = sum(a * b for a, b in zip(dxs, dys, strict=True)) / math.sqrt(sxx * syy)
    return max(-1.0, min(1.0, r))


def correlations(
    series_by_kpi: Mapping[str, Sequence[DataPoint]],
    days: Literal[30, 90] = 30,
) -> list[Correlation]:
    """Pearson r for every pair of KPIs over the last `days` calendar days ending at the
    latest date of any series (last value per UTC day). Pairs with fewer than 5
    overlapping days or zero variance are skipped. Sorted by `|r|` descending, then ids."""
    daily = {kpi: _daily_values(points) for kpi, points in series_by_kpi.items() if points}
    if not daily:
        return []
    end = max(max(values) for values in daily.values())
    start = end - timedelta(days=days - 1)
    windowed = {
        kpi: {d: v for d, v in values.items() if d >= start} for kpi, values in daily.items()
    }
    found: list[Correlation] = []
    for kpi_a, kpi_b in combinations(sorted(windowed), 2):
        shared = sorted(windowed[kpi_a].keys() & windowed[kpi_b].keys())
        if len(shared) < MIN_OVERLAP:
            continue
        r = pearson([windowed[kpi_a][d] for d in shared], [windowed[kpi_b][d] for d in shared])
        if r is not None:
            found.append(Correlation(kpi_a, kpi_b, r, len(shared)))
    found.sort(key=lambda c: (-abs(c.r), c.kpi_a, c.kpi_b))
    return found
