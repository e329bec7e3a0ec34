"""Analytics across KPIs: the top movers and the pairwise correlations."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
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


def daily_values(series_by_kpi: Mapping[str, Sequence[DataPoint]]
                 ) -> dict[str, dict[date, float]]:
    """Each KPI's last value per UTC day (KPIs without points left out)."""
    return {kpi: _daily_values(points) for kpi, points in series_by_kpi.items() if points}


def correlations(
    series_by_kpi: Mapping[str, Sequence[DataPoint]],
    days: Literal[30, 90] = 30,
    *,
    limit: int | None = None,
    daily: Mapping[str, Mapping[date, float]] | None = None,
) -> list[Correlation]:
    """Pearson r for every pair of KPIs over the last `days` calendar days ending at the
    latest date of any series (last value per UTC day). Pairs with fewer than 5
    overlapping days or zero variance are skipped. Sorted by `|r|` descending, then ids;
    the first `limit` only when given. `daily` is `daily_values(series_by_kpi)`, for
    callers that ask for several windows.

    All pairs at once (200 KPIs are 19,900 pairs): the KPIs x days matrix with a mask of
    the days each KPI has, and the pairwise sums over shared days as matrix products
    (`pearson` is the same formula one pair at a time). Each row is centred on its own
    window mean first, which keeps large levels (prices) from cancelling out digits."""
    daily = daily if daily is not None else daily_values(series_by_kpi)
    if len(daily) < 2:
        return []
    import numpy as np

    end = max(max(values) for values in daily.values())
    start = end - timedelta(days=days - 1)
    kpis = sorted(daily)
    values = np.zeros((len(kpis), days))
    mask = np.zeros((len(kpis), days))
    for row, kpi in enumerate(kpis):
        for day, value in daily[kpi].items():
            if day >= start:
                values[row, (day - start).days] = value
                mask[row, (day - start).days] = 1.0
    counts = mask.sum(axis=1)
    means = np.divide(values.sum(axis=1), counts, out=np.zeros(len(kpis)), where=counts > 0)
    x = (values - means[:, None]) * mask
    n = mask @ mask.T
    sum_a = x @ mask.T  # [a, b]: sum of a's values over the days shared with b
    sum_sq = (x * x) @ mask.T
    sum_ab = x @ x.T
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = n * sum_ab - sum_a * sum_a.T
        var_a = n * sum_sq - sum_a * sum_a
        var_b = var_a.T
        r = cov / np.sqrt(var_a * var_b)
    # zero variance within the overlap, up to rounding
    flat = (var_a <= 1e-12 * n * sum_sq) | (var_b <= 1e-12 * n * sum_sq.T)
    keep = (n >= MIN_OVERLAP) & ~flat & np.isfinite(r)
    keep = np.triu(keep, k=1)
    if limit is not None and int(keep.sum()) > limit:  # the top `limit` and any ties
        strength = np.where(keep, np.abs(r), -1.0)
        cutoff = np.partition(strength.ravel(), -limit)[-limit]
        keep &= strength >= cutoff
    rows, cols = np.nonzero(keep)
    found = [Correlation(kpis[a], kpis[b], max(-1.0, min(1.0, float(r[a, b]))), int(n[a, b]))
             for a, b in zip(rows.tolist(), cols.tolist(), strict=True)]
    found.sort(key=lambda c: (-abs(c.r), c.kpi_a, c.kpi_b))
    return found[:limit] if limit is not None else found
