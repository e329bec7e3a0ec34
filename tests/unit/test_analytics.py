"""The deterministic analytics (SPEC step 4), checked against hand-computed numbers."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metric_stream.analytics import (
    Alert,
    Gap,
    SeriesAnalytics,
    analyse_series,
    correlations,
    top_movers,
)
from metric_stream.analytics.cross import pearson
from metric_stream.models import Thresholds
from metric_stream.models.timeseries import DataPoint

BASE = datetime(2026, 1, 1, 12, tzinfo=UTC)


def series(values: list[float], days: list[int] | None = None, kpi: str = "k") -> list[DataPoint]:
    offsets = days if days is not None else list(range(len(values)))
    return [
        DataPoint(kpi_id=kpi, timestamp=BASE + timedelta(days=d), value=v)
        for d, v in zip(offsets, values, strict=True)
    ]


SAMPLE = [100.0, 110.0, 99.0, 105.0, 120.0, 90.0, 100.0, 130.0, 117.0]


def sample_std(xs: list[float]) -> float:
    mean = sum(xs) / len(xs)
    return math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))


def test_changes_against_hand_computed_references() -> None:
    a = analyse_series(series(SAMPLE), thresholds=None)
    assert a.has_data
    assert a.count == 9
    assert a.latest_value == 117.0
    assert a.latest_timestamp == BASE + timedelta(days=8)
    one, seven, thirty = a.change(1), a.change(7), a.change(30)
    assert one is not None and seven is not None and thirty is not None
    assert one.reference_value == 130.0
    assert one.absolute == pytest.approx(117 - 130)
    assert one.percent == pytest.approx(-13 / 130 * 100)  # -10 %
    assert seven.reference_value == 110.0
    assert seven.reference_timestamp == BASE + timedelta(days=1)
    assert seven.absolute == pytest.approx(7.0)
    assert seven.percent == pytest.approx(7 / 110 * 100)
    assert thirty.reference_value is None
    assert thirty.absolute is None
    assert thirty.percent is None


def test_volatility_uses_log_returns_of_the_window() -> None:
    a = analyse_series(series(SAMPLE), thresholds=None)
    window = SAMPLE[1:]  # days 1..8: at or after latest - 7 days
    log_returns = [
        math.log(99 / 110),
        math.log(105 / 99),
        math.log(120 / 105),
        math.log(90 / 120),
        math.log(100 / 90),
        math.log(130 / 100),
        math.log(117 / 130),
    ]
    assert len(log_returns) == len(window) - 1
    v7 = a.volatility_for(7)
    assert v7 is not None
    assert v7.method == "log"
    assert v7.n_returns == 7
    assert v7.value == pytest.approx(sample_std(log_returns))
    v30 = a.volatility_for(30)
    assert v30 is not None
    assert v30.n_returns == 8
    assert v30.value == pytest.approx(sample_std([math.log(110 / 100), *log_returns]))


def test_trend_slope_and_r_squared() -> None:
    a = analyse_series(series([1.0, 3.0, 2.0, 5.0]), thresholds=None)
    assert a.trend is not None
    # x = 0..3 (mean 1.5), y mean 2.75; Sxy = 2.625 - 0.125 - 0.375 + 3.375 = 5.5; Sxx = 5
    assert a.trend.slope_per_day == pytest.approx(5.5 / 5)
    assert a.trend.intercept == pytest.approx(2.75 - 1.1 * 1.5)
    # fitted 1.1, 2.2, 3.3, 4.4: SS_res = .01 + .64 + 1.69 + .36 = 2.7; SS_tot = 8.75
    assert a.trend.r_squared == pytest.approx(1 - 2.7 / 8.75)
    assert a.trend.direction == "up"
    assert a.trend.strength == "moderate"
    assert a.trend.n_points == 4


def test_trend_direction_down_strong_and_flat_rule() -> None:
    down = analyse_series(series([10.0, 8.0, 6.0, 4.0]), thresholds=None)
    assert down.trend is not None
    assert down.trend.slope_per_day == pytest.approx(-2.0)
    assert down.trend.r_squared == pytest.approx(1.0)
    assert (down.trend.direction, down.trend.strength) == ("down", "strong")
    # slope 0.001/day * 30 = 0.03 <= 1 % of a mean of ~1000: flat
    nearly = analyse_series(series([1000.0, 1000.001, 1000.002]), thresholds=None)
    assert nearly.trend is not None
    assert nearly.trend.direction == "flat"


def test_range_position_percentile_and_zscore() -> None:
    a = analyse_series(series(SAMPLE), thresholds=None)
    assert (a.minimum, a.maximum) == (90.0, 130.0)
    assert a.position == pytest.approx((117 - 90) / (130 - 90))
    # 100, 110, 99, 105, 90, 100, 117 are <= 117: 7 of 9
    assert a.percentile_rank == pytest.approx(7 / 9 * 100)
    mean = 971 / 9
    std = math.sqrt(sum((v - mean) ** 2 for v in SAMPLE) / 8)
    assert a.zscore_mean == pytest.approx(mean)
    assert a.zscore_std == pytest.approx(std)
    assert a.zscore == pytest.approx((117 - mean) / std)
    assert not a.outlier


def test_outlier_flag() -> None:
    values = [100.0, 102.0] * 15 + [200.0]
    a = analyse_series(series(values), thresholds=None)
    assert a.zscore is not None
    mean = (15 * 100 + 15 * 102 + 200) / 31
    std = math.sqrt((15 * (100 - mean) ** 2 + 15 * (102 - mean) ** 2 + (200 - mean) ** 2) / 30)
    assert a.zscore == pytest.approx((200 - mean) / std)
    assert a.zscore >= 3
    assert a.outlier


def test_gaps_are_listed_and_changes_use_the_last_point_before() -> None:
    a = analyse_series(series([1.0, 2.0, 3.0, 4.0, 5.0], days=[0, 1, 2, 6, 7]), thresholds=None)
    assert a.gaps == (Gap(date(2026, 1, 4), date(2026, 1, 6), 3),)
    assert a.missing_days == 3
    assert a.to_wire()["gaps"] == [{"start": "2026-01-04", "end": "2026-01-06", "days": 3}]
    one = a.change(1)
    assert one is not None and one.reference_value == 4.0
    across = analyse_series(series([1.0, 2.0, 8.0], days=[0, 1, 5]), thresholds=None)
    one = across.change(1)
    assert one is not None
    assert one.reference_value == 2.0  # last point at or before day 4
    assert one.percent == pytest.approx((8 - 2) / 2 * 100)


def test_flat_series() -> None:
    a = analyse_series(series([5.0] * 10), thresholds=None)
    v7 = a.volatility_for(7)
    assert v7 is not None and v7.value == 0.0
    assert a.zscore_std == 0.0
    assert a.zscore is None
    assert not a.outlier
    assert a.position is None
    assert a.percentile_rank == 100.0
    assert a.trend is not None
    assert a.trend.slope_per_day == pytest.approx(0.0)
    assert a.trend.r_squared is None
    assert (a.trend.direction, a.trend.strength) == ("flat", "weak")


def test_negative_and_zero_values_use_simple_returns() -> None:
    a = analyse_series(series([-2.0, 0.0, 4.0, -4.0]), thresholds=None)
    v7 = a.volatility_for(7)
    assert v7 is not None
    assert v7.method == "simple"
    # (0 - -2) / -2 = -1; 0 -> 4 skipped (reference 0); (-4 - 4) / 4 = -2
    assert v7.n_returns == 2
    assert v7.value == pytest.approx(math.sqrt(((-1 + 1.5) ** 2 + (-2 + 1.5) ** 2) / 1))
    one = a.change(1)
    assert one is not None
    assert one.absolute == pytest.approx(-8.0)
    assert one.percent == pytest.approx(-200.0)
    from_zero = analyse_series(series([0.0, 5.0]), thresholds=None).change(1)
    assert from_zero is not None
    assert from_zero.absolute == 5.0
    assert from_zero.percent is None


def test_single_point_and_empty_series() -> None:
    a = analyse_series(series([42.0]), thresholds=None)
    assert a.has_data and a.count == 1
    assert all(c.absolute is None for c in a.changes)
    assert all(v.value is None and v.n_returns == 0 for v in a.volatility)
    assert a.trend is None
    assert a.position is None
    assert a.percentile_rank == 100.0
    assert a.zscore is None
    assert a.sma_short is None and a.sma_long is None
    assert a.gaps == () and a.missing_days == 0
    empty = analyse_series([], thresholds=Thresholds(high=1))
    assert empty == SeriesAnalytics(has_data=False)
    assert empty.to_wire()["hasData"] is False
    assert empty.to_wire()["latestValue"] is None


def test_threshold_alerts() -> None:
    points = series(SAMPLE)
    high = analyse_series(points, thresholds=Thresholds(high=100)).alerts
    assert high == (Alert("high", 100.0, 117.0),)
    low = analyse_series(points, thresholds=Thresholds(low=120)).alerts
    assert low == (Alert("low", 120.0, 117.0),)
    assert analyse_series(points, thresholds=Thresholds(high=200, low=50)).alerts == ()
    assert analyse_series(points, thresholds=Thresholds(high=117)).alerts == ()
    assert analyse_series(points, thresholds=None).alerts == ()


def test_moving_average_crossings() -> None:
    values = [100.0] * 30 + [50.0] * 7 + [150.0] * 13 + [0.0] * 3  # days 0..52
    a = analyse_series(series(values), thresholds=None)
    # day 39: short (4*50 + 3*150) / 7 = 92.86 < long (20*100 + 350 + 450) / 30 = 93.33
    # day 40: short (3*50 + 4*150) / 7 = 107.14 > long (19*100 + 350 + 600) / 30 = 95
    # day 51: short 750 / 7 = 107.14 > long (800 + 350 + 1950) / 30 = 103.33
    # day 52: short 600 / 7 = 85.71 < long (700 + 350 + 1950) / 30 = 100
    assert [(c.kind, c.date) for c in a.crossings] == [
        ("golden", date(2026, 2, 10)),
        ("death", date(2026, 2, 22)),
    ]
    assert a.crossings[0].sma_short == pytest.approx(750 / 7)
    assert a.crossings[0].sma_long == pytest.approx(95.0)
    assert a.sma_short == pytest.approx(600 / 7)
    assert a.sma_long == pytest.approx(100.0)
    wire = a.to_wire()
    assert wire["crossings"][1]["kind"] == "death"
    assert wire["smaShort"] == pytest.approx(600 / 7)


def test_now_drops_future_points_and_reports_age() -> None:
    now = BASE + timedelta(days=2, hours=12)
    a = analyse_series(series([1.0, 2.0, 3.0, 4.0]), thresholds=None, now=now)
    assert a.latest_value == 3.0
    assert a.days_since_latest == pytest.approx(0.5)


def test_correlations() -> None:
    xs = [1.0, 4.0, 2.0, 8.0, 5.0, 7.0, 3.0, 6.0, 9.0, 10.0]
    by_kpi = {
        "a": series(xs, kpi="a"),
        "b": series([2 * x + 3 for x in xs], kpi="b"),
        "c": series([-x for x in xs], kpi="c"),
        "flat": series([5.0] * 10, kpi="flat"),
        "short": series([1.0, 2.0, 3.0, 5.0], kpi="short"),
    }
    found = correlations(by_kpi, days=30)
    assert [(c.kpi_a, c.kpi_b, c.n) for c in found] == [
        ("a", "b", 10),
        ("a", "c", 10),
        ("b", "c", 10),
    ]
    assert [c.r for c in found] == pytest.approx([1.0, -1.0, -1.0])
    assert correlations({}, days=30) == []


def test_correlation_window_and_hand_computed_r() -> None:
    old = list(range(60))
    a = series([float(d % 7) for d in old], kpi="a")
    b = series([float(d % 5) for d in old], kpi="b")
    assert correlations({"a": a, "b": b}, days=30)[0].n == 30
    assert correlations({"a": a, "b": b}, days=90)[0].n == 60
    x, y = [1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 1.0, 4.0, 3.0, 5.0]
    # dx = -2..2, dy = -1, -2, 1, 0, 2: Sxy = 2 + 2 + 0 + 0 + 4 = 8; Sxx = Syy = 10
    (corr,) = correlations({"x": series(x, kpi="x"), "y": series(y, kpi="y")}, days=30)
    assert corr.r == pytest.approx(8 / 10)


def test_top_movers_ordering() -> None:
    def analysed(
        kpi: str, before: float, after: float, high: float | None = None
    ) -> SeriesAnalytics:
        return analyse_series(series([before, after], kpi=kpi), thresholds=Thresholds(high=high))

    by_kpi = {
        "up10": analysed("up10", 100, 110),
        "down20": analysed("down20", 100, 80),
        "up5": analysed("up5", 100, 105),
        "alert1": analysed("alert1", 100, 101, high=100),
        "nodata": analyse_series([], thresholds=None),
    }
    movers = top_movers(by_kpi, window=1)
    assert [m.kpi_id for m in movers] == ["down20", "up10", "up5", "alert1"]
    assert movers[0].percent == pytest.approx(-20.0)
    assert [m.kpi_id for m in top_movers(by_kpi, window=1, n=2)] == ["down20", "up10"]
    first = top_movers(by_kpi, window=1, n=2, alerts_first=True)
    assert [m.kpi_id for m in first] == ["alert1", "down20"]
    assert first[0].to_wire()["alerting"] is True
    assert top_movers(by_kpi, window=7) == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-(10**6), 10**6).map(lambda i: i / 100), min_size=1, max_size=40))
def test_properties(values: list[float]) -> None:
    a = analyse_series(series(values), thresholds=None)
    assert a.position is None or 0.0 <= a.position <= 1.0
    assert a.percentile_rank is not None and 0 < a.percentile_rank <= 100
    assert a.latest_value is not None
    for change in a.changes:
        if change.percent is not None:
            assert change.reference_value is not None
            expected = change.reference_value * (1 + change.percent / 100)
            assert a.latest_value == pytest.approx(expected, rel=1e-9, abs=1e-9)
    for vol in a.volatility:
        assert vol.value is None or vol.value >= 0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.one_of(st.none(), st.integers(-10**6, 10**6).map(lambda v: v / 8)),
                         min_size=30,
                         max_size=30), min_size=2, max_size=6),
       st.sampled_from([30, 90]))
def test_all_pairs_at_once_match_the_pairwise_reference(rows: list[list[float | None]],
                                                        window: int) -> None:
    """The matrix computation of `correlations` against `pearson`, pair by pair, over
    the days both KPIs have (None is a missing day)."""
    by_kpi = {f"k{i}": series([v for v in row if v is not None],
                              [d for d, v in enumerate(row) if v is not None], kpi=f"k{i}")
              for i, row in enumerate(rows)}
    found = {(c.kpi_a, c.kpi_b): c for c in correlations(by_kpi, days=window)}  # type: ignore[arg-type]
    kpis = sorted(k for k, points in by_kpi.items() if points)
    last = max((d for row in rows for d, v in enumerate(row) if v is not None), default=0)
    for i, a in enumerate(kpis):
        for b in kpis[i + 1:]:
            row_a, row_b = rows[int(a[1:])], rows[int(b[1:])]
            shared = [d for d in range(30) if row_a[d] is not None and row_b[d] is not None
                      and d > last - window]
            xs = [float(row_a[d]) for d in shared]  # type: ignore[arg-type]
            ys = [float(row_b[d]) for d in shared]  # type: ignore[arg-type]
            expected = pearson(xs, ys) if len(shared) >= 5 else None
            if expected is None or (max(xs) - min(xs) < 1e-3 or max(ys) - min(ys) < 1e-3):
                continue  # near-constant overlaps: rounding decides, both skip or agree
            assert (a, b) in found
            assert found[(a, b)].n == len(shared)
            assert found[(a, b)].r == pytest.approx(expected, abs=1e-6)


def test_the_top_correlations_only() -> None:
    by_kpi = {f"k{i}": series([math.sin(d / (i + 1)) + d * 0.01 * i for d in range(40)],
                              kpi=f"k{i}") for i in range(8)}
    every = correlations(by_kpi, days=30)
    assert correlations(by_kpi, days=30, limit=5) == every[:5]
    assert correlations({"only": by_kpi["k0"]}, days=30) == []
