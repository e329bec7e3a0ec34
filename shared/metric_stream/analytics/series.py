"""Per-KPI analytics of a daily series: changes, volatility, trend, range, moving
averages, z-score, threshold alerts and gaps.

The series is normalised first: points are sorted by timestamp, points after `now`
(when given) are dropped, and only the last point of each UTC calendar day is kept.
"Window of N days" means the points whose timestamp is at or after
`latest.timestamp - N days` (so at most N + 1 daily points), unless said otherwise.
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any, Literal

from metric_stream.models.kpi import Thresholds
from metric_stream.models.timeseries import DataPoint

CHANGE_WINDOWS = (1, 7, 30)
VOLATILITY_WINDOWS = (7, 30)
TREND_DAYS = 30
ZSCORE_DAYS = 30
CROSSING_DAYS = 30
SMA_SHORT = 7
SMA_LONG = 30
OUTLIER_Z = 3.0
FLAT_FRACTION = 0.01
MODERATE_R2 = 0.3
STRONG_R2 = 0.7

Direction = Literal["up", "down", "flat"]
Strength = Literal["weak", "moderate", "strong"]
ReturnMethod = Literal["log", "simple"]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _wire(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_wire(item) for item in value]
    if hasattr(value, "to_wire"):
        return value.to_wire()
    return value


class _Wire:
    def to_wire(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict with camelCase keys (dates in ISO 8601)."""
        return {_camel(k): _wire(v) for k, v in vars(self).items()}


@dataclass(frozen=True)
class Change(_Wire):
    """Change over `window_days`: the reference is the last point at or before
    `latest.timestamp - window_days`; `absolute = latest - reference`,
    `percent = (latest - reference) / reference * 100` (None when reference is 0),
    so that `latest == reference * (1 + percent / 100)`. All None when the history
    is too short."""

    window_days: int
    reference_value: float | None = None
    reference_timestamp: datetime | None = None
    absolute: float | None = None
    percent: float | None = None


@dataclass(frozen=True)
class Volatility(_Wire):
    """Sample standard deviation (n - 1) of the returns between consecutive daily
    points of the window. `method` is "log" (`ln(v_i / v_{i-1})`) when every value of
    the window is > 0, else "simple" (`(v_i - v_{i-1}) / v_{i-1}`, pairs with
    `v_{i-1} == 0` skipped). `value` is None with fewer than 2 returns. Returns across
    a gap span the gap (not rescaled)."""

    window_days: int
    value: float | None
    method: ReturnMethod
    n_returns: int


@dataclass(frozen=True)
class Trend(_Wire):
    """Least-squares line `value = intercept + slope_per_day * x` over the trend window,
    `x` = days since the window's first point (fractional). `r_squared = 1 - SS_res /
    SS_tot` (None when all values are equal). Direction is "flat" when
    `|slope_per_day| * 30 <= 0.01 * |mean|` (the fitted move over 30 days is within 1 %
    of the mean level; with a mean of 0 only a zero slope is flat), else "up"/"down" by
    the slope's sign. Strength from r²: < 0.3 weak, < 0.7 moderate, else strong (weak
    when r² is None)."""

    slope_per_day: float
    intercept: float
    r_squared: float | None
    direction: Direction
    strength: Strength
    n_points: int


@dataclass(frozen=True)
class Crossing(_Wire):
    """The 7-day SMA crossing the 30-day SMA: "golden" when it moves above, "death"
    when it moves below (compared with the last day on which they differed)."""

    date: date
    kind: Literal["golden", "death"]
    sma_short: float
    sma_long: float


@dataclass(frozen=True)
class Alert(_Wire):
    """Latest value above `high` (`value > threshold`) or below `low` (`value < threshold`)."""

    kind: Literal["high", "low"]
    threshold: float
    value: float


@dataclass(frozen=True)
class Gap(_Wire):
    """Missing calendar days `start..end` (inclusive) between two points; `days` counts them."""

    start: date
    end: date
    days: int


@dataclass(frozen=True)
class SeriesAnalytics(_Wire):
    """The analytics of one series (see the field classes for their formulas).

    - `position = (latest - min) / (max - min)` over the whole history, None when max == min.
    - `percentile_rank = 100 * count(v <= latest) / count`, over the whole history.
    - `sma_short` / `sma_long`: mean of the values dated within the last 7 / 30 calendar
      days (latest date included), None unless the history starts at least that far back.
    - `crossings`: SMA crossings dated within the last 30 days.
    - `zscore = (latest - mean) / stdev` over the 30-day window (latest included, sample
      stdev); None with fewer than 2 points or stdev 0. `outlier` when `|zscore| >= 3`.
    - `days_since_latest = (now - latest timestamp)` in days, when `now` is given.
    """

    has_data: bool
    kpi_id: str | None = None
    count: int = 0
    first_timestamp: datetime | None = None
    latest_timestamp: datetime | None = None
    latest_value: float | None = None
    days_since_latest: float | None = None
    changes: tuple[Change, ...] = ()
    volatility: tuple[Volatility, ...] = ()
    trend: Trend | None = None
    minimum: float | None = None
    maximum: float | None = None
    position: float | None = None
    percentile_rank: float | None = None
    sma_short: float | None = None
    sma_long: float | None = None
    crossings: tuple[Crossing, ...] = ()
    zscore: float | None = None
    zscore_mean: float | None = None
    zscore_std: float | None = None
    outlier: bool = False
    alerts: tuple[Alert, ...] = ()
    gaps: tuple[Gap, ...] = field(default=())
    missing_days: int = 0

    def change(self, window_days: int) -> Change | None:
        return next((c for c in self.changes if c.window_days == window_days), None)

    def volatility_for(self, window_days: int) -> Volatility | None:
        return next((v for v in self.volatility if v.window_days == window_days), None)


def _utc_date(moment: datetime) -> date:
    return moment.astimezone(UTC).date() if moment.tzinfo else moment.date()


def _daily(points: Sequence[DataPoint], now: datetime | None
           ) -> tuple[list[DataPoint], list[date]]:
    """The last point of each UTC day (up to `now`), oldest first, and their dates."""
    ordered = points if all(a.timestamp <= b.timestamp for a, b in pairwise(points)) else (
        sorted(points, key=lambda p: p.timestamp))  # the store answers in order already
    by_day: dict[date, DataPoint] = {}
    for point in ordered:
        if now is None or point.timestamp <= now:
            by_day[_utc_date(point.timestamp)] = point
    return list(by_day.values()), list(by_day)


def _window(points: list[DataPoint], days: int) -> list[DataPoint]:
    start = points[-1].timestamp - timedelta(days=days)
    return [p for p in points if p.timestamp >= start]


def _change(points: list[DataPoint], days: int) -> Change:
    latest = points[-1]
    cutoff = latest.timestamp - timedelta(days=days)
    reference = next((p for p in reversed(points) if p.timestamp <= cutoff), None)
    if reference is None:
        return Change(window_days=days)
    absolute = latest.value - reference.value
    percent = None if reference.value == 0 else absolute / reference.value * 100
    return Change(days, reference.value, reference.timestamp, absolute, percent)


def returns(values: Sequence[float]) -> tuple[list[float], ReturnMethod]:
    """Returns between consecutive values: log when all values are > 0, else simple."""
    if all(v > 0 for v in values):
        return [math.log(b / a) for a, b in pairwise(values)], "log"
    return [(b - a) / a for a, b in pairwise(values) if a != 0], "simple"


def stdev(values: Sequence[float]) -> float:
    """Sample standard deviation (n - 1), two-pass in floats (`statistics.stdev` is exact
    but works in fractions: 20x slower, for digits that floats do not keep anyway)."""
    mean = statistics.fmean(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _volatility(points: list[DataPoint], days: int) -> Volatility:
    rets, method = returns([p.value for p in _window(points, days)])
    value = stdev(rets) if len(rets) >= 2 else None
    return Volatility(days, value, method, len(rets))


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float, float | None]:
    """Least squares `(slope, intercept, r²)`; r² None when the ys are all equal."""
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mean_x) ** 2 for x in xs)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    intercept = mean_y - slope * mean_x
    ss_tot = sum((y - mean_y) ** 2 for y in ys)
    if ss_tot == 0:
        return slope, intercept, None
    ss_res = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys, strict=True))
    return slope, intercept, max(0.0, min(1.0, 1 - ss_res / ss_tot))


def _trend(points: list[DataPoint]) -> Trend | None:
    window = _window(points, TREND_DAYS)
    if len(window) < 3:
        return None
    origin = window[0].timestamp
    xs = [(p.timestamp - origin).total_seconds() / 86400 for p in window]
    ys = [p.value for p in window]
    slope, intercept, r2 = linear_fit(xs, ys)
    direction: Direction
    if abs(slope) * TREND_DAYS <= FLAT_FRACTION * abs(statistics.fmean(ys)):
        direction = "flat"
    else:
        direction = "up" if slope > 0 else "down"
    strength: Strength = (
        "weak" if r2 is None or r2 < MODERATE_R2 else "moderate" if r2 < STRONG_R2 else "strong"
    )
    return Trend(slope, intercept, r2, direction, strength, len(window))


def _sma_at(points: list[DataPoint], index: int, days: int, first: date,
            dates: Sequence[date] | None = None) -> float | None:
    """Mean of the values dated within the `days` calendar days ending at `points[index]`
    (`dates` are the points' UTC dates, when the caller has them already)."""
    dates = dates if dates is not None else [_utc_date(p.timestamp) for p in points]
    start = dates[index] - timedelta(days=days - 1)
    if first > start:
        return None
    begin = bisect_left(dates, start, 0, index + 1)
    return statistics.fmean([p.value for p in points[begin: index + 1]])


def _crossings(points: list[DataPoint], dates: Sequence[date]) -> tuple[Crossing, ...]:
    first = dates[0]
    since = dates[-1] - timedelta(days=CROSSING_DAYS)
    scan_from = since - timedelta(days=CROSSING_DAYS)
    found: list[Crossing] = []
    last_sign = 0
    values = [p.value for p in points]

    def sma(index: int, days: int) -> float | None:  # `_sma_at`, without its lookups
        start = dates[index] - timedelta(days=days - 1)
        if first > start:
            return None
        begin = bisect_left(dates, start, 0, index + 1)
        return math.fsum(values[begin: index + 1]) / (index + 1 - begin)

    for index in range(bisect_left(dates, scan_from), len(points)):
        short = sma(index, SMA_SHORT)
        long = sma(index, SMA_LONG)
        if short is None or long is None or short == long:
            continue
        sign = 1 if short > long else -1
        day = dates[index]
        if last_sign and sign != last_sign and day > since:
            found.append(Crossing(day, "golden" if sign > 0 else "death", short, long))
        last_sign = sign
    return tuple(found)


def _alerts(value: float, thresholds: Thresholds | None) -> tuple[Alert, ...]:
    if thresholds is None:
        return ()
    alerts: list[Alert] = []
    if thresholds.high is not None and value > thresholds.high:
        alerts.append(Alert("high", thresholds.high, value))
    if thresholds.low is not None and value < thresholds.low:
        alerts.append(Alert("low", thresholds.low, value))
    return tuple(alerts)


def _gaps(days: Sequence[date]) -> tuple[Gap, ...]:
    gaps = []
    for before, after in pairwise(days):
        missing = (after - before).days - 1
        if missing > 0:
            gaps.append(Gap(before + timedelta(days=1), after - timedelta(days=1), missing))
    return tuple(gaps)


def analyse_series(
    points: Sequence[DataPoint],
    *,
    thresholds: Thresholds | None,
    now: datetime | None = None,
) -> SeriesAnalytics:
    """Analyse one KPI's daily series; an empty series gives `has_data=False`."""
    daily, dates = _daily(points, now)
    if not daily:
        return SeriesAnalytics(has_data=False, kpi_id=points[0].kpi_id if points else None)
    latest = daily[-1]
    values = [p.value for p in daily]
    low, high = min(values), max(values)
    z_values = [p.value for p in _window(daily, ZSCORE_DAYS)]
    z_mean = statistics.fmean(z_values)
    z_std = stdev(z_values) if len(z_values) >= 2 else None
    zscore = (latest.value - z_mean) / z_std if z_std else None
    first_day = dates[0]
    gaps = _gaps(dates)
    return SeriesAnalytics(
        has_data=True,
        kpi_id=latest.kpi_id,
        count=len(daily),
        first_timestamp=daily[0].timestamp,
        latest_timestamp=latest.timestamp,
        latest_value=latest.value,
        days_since_latest=(
            (now - latest.timestamp).total_seconds() / 86400 if now is not None else None
        ),
        changes=tuple(_change(daily, days) for days in CHANGE_WINDOWS),
        volatility=tuple(_volatility(daily, days) for days in VOLATILITY_WINDOWS),
        trend=_trend(daily),
        minimum=low,
        maximum=high,
        position=None if high == low else (latest.value - low) / (high - low),
        percentile_rank=100 * sum(v <= latest.value for v in values) / len(values),
        sma_short=_sma_at(daily, len(daily) - 1, SMA_SHORT, first_day, dates),
        sma_long=_sma_at(daily, len(daily) - 1, SMA_LONG, first_day, dates),
        crossings=_crossings(daily, dates),
        zscore=zscore,
        zscore_mean=z_mean,
        zscore_std=z_std,
        outlier=zscore is not None and abs(zscore) >= OUTLIER_Z,
        alerts=_alerts(latest.value, thresholds),
        gaps=gaps,
        missing_days=sum(g.days for g in gaps),
    )
