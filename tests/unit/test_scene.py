"""Vector chart scenes: scales and ticks, thinning, every chart kind and awkward series,
and the SVG writer."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from metric_stream.charts.render import ChartSpec
from metric_stream.charts.scene import (
    Path,
    Rect,
    Text,
    build_scene,
    date_ticks,
    nice_ticks,
    scene_svg,
    thin,
    value_range,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def line(values: list[float], **kwargs: object) -> ChartSpec:
    points = [(T0 + timedelta(days=i), v) for i, v in enumerate(values)]
    return ChartSpec(title=str(kwargs.pop("title", "KPI")), series={"kpi": points},
                     **kwargs)  # type: ignore[arg-type]


@given(st.floats(-1e12, 1e12), st.floats(1e-6, 1e12))
def test_nice_ticks_cover_the_range_evenly(low: float, span: float) -> None:
    assume(span > abs(low) * 1e-6)  # a range above the floats' resolution at that level
    high = low + span
    ticks = nice_ticks(low, high)
    assert 1 <= len(ticks) <= 12
    assert all(low - span * 1e-6 <= t <= high + span * 1e-6 for t in ticks)
    steps = [b - a for a, b in pairwise(ticks)]
    assert all(math.isclose(s, steps[0], rel_tol=1e-6) for s in steps)


def test_nice_ticks_are_round() -> None:
    assert nice_ticks(0, 100) == [0, 25, 50, 75, 100]
    assert nice_ticks(13, 87) == [20, 40, 60, 80]


def test_value_range_pads_a_constant_series() -> None:
    assert value_range([5, 5, 5]) == (4.75, 5.25)
    assert value_range([0, 0]) == (-1.0, 1.0)
    low, high = value_range([-3, 7])
    assert low < -3 and high > 7


def test_date_ticks_pick_a_calendar_step() -> None:
    year = date_ticks(T0, T0 + timedelta(days=364))
    assert [label for _, label in year][:2] == ["2026", "Mar"]
    assert len(year) <= 7
    week = date_ticks(T0, T0 + timedelta(days=6))
    assert [label for _, label in week][:2] == ["1 Jan", "2 Jan"]
    decade = date_ticks(T0, T0 + timedelta(days=3650))
    assert all(label.isdigit() for _, label in decade)


@given(st.lists(st.floats(-1e9, 1e9), min_size=1, max_size=3000), st.integers(1, 400))
def test_thinning_keeps_every_extreme_and_the_order(values: list[float], columns: int) -> None:
    points = [(float(i), v) for i, v in enumerate(values)]
    kept = thin(points, columns)
    assert len(kept) <= max(len(points), columns * 4 + 4)
    assert min(v for _, v in kept) == min(values) and max(v for _, v in kept) == max(values)
    assert kept[0] == points[0] and kept[-1] == points[-1]
    assert [x for x, _ in kept] == sorted(x for x, _ in kept)


@pytest.mark.parametrize("values", [
    [42.0],                                    # one point
    [7.0] * 30,                                # constant
    [1e15, 2e15, 1.5e15],                      # huge
    [-5e-9, -1e-9, -3e-9],                     # tiny and negative
    [-1e12, 1e12, 0.0],                        # extreme range
])
def test_awkward_series_draw(values: list[float]) -> None:
    scene = build_scene(line(values, unit="USD", high=10.0, low=1.0))
    paths = [s for s in scene.shapes if isinstance(s, Path)]
    assert paths and all(math.isfinite(c) for p in paths for xy in p.points for c in xy)
    assert all(0 <= x <= scene.width + 1 for p in paths for x, _ in p.points)
    marks = [s for s in scene.shapes if isinstance(s, Rect)]
    if len(values) == 1:
        assert marks  # a single point is a dot


def test_a_long_year_is_thinned_to_the_width() -> None:
    values = [math.sin(i / 10) * 100 + 200 for i in range(3650)]
    scene = build_scene(line(values), width=300)
    longest = max(len(s.points) for s in scene.shapes if isinstance(s, Path))
    assert longest <= 300 * 4 + 4


def test_line_chart_has_averages_thresholds_and_a_legend() -> None:
    scene = build_scene(line([float(i % 17) for i in range(90)], unit="%", high=15.0, low=2.0,
                             demo=True))
    texts = scene.texts()
    assert "7-day average" in texts and "30-day average" in texts
    assert "high 15.0%" in texts and "low 2.0%" in texts
    assert "DEMO" in texts


def test_bar_candlestick_and_multi_line() -> None:
    bars = build_scene(ChartSpec(title="b", kind="bar", series={
        "a": [(T0 + timedelta(days=i), float(i - 5)) for i in range(10)]}))
    assert sum(isinstance(s, Rect) for s in bars.shapes) == 10
    candles = [(T0 + timedelta(days=i), 10.0, 12.0, 9.0, 11.0 if i % 2 else 9.5)
               for i in range(20)]
    drawn = build_scene(ChartSpec(title="c", kind="candlestick", candles=candles))
    assert sum(isinstance(s, Rect) for s in drawn.shapes) == 20
    multi = build_scene(ChartSpec(title="m", kind="multi-line", series={
        "x": [(T0, 1.0), (T0 + timedelta(days=1), 2.0)],
        "y": [(T0, 3.0), (T0 + timedelta(days=1), 1.0)]}))
    assert {"x", "y"} <= set(multi.texts())


def test_an_empty_chart_is_refused() -> None:
    with pytest.raises(ValueError, match="no points"):
        build_scene(ChartSpec(title="empty", series={"a": []}))


def test_svg_is_well_formed_and_escapes_text() -> None:
    hostile = "<script>alert(1)</script> & \"q\""
    spec = ChartSpec(title=hostile, kind="multi-line", series={
        hostile: [(T0, 1.0), (T0 + timedelta(days=3), 2.0)],
        "b": [(T0, 2.0), (T0 + timedelta(days=3), 1.0)]})
    svg = scene_svg(build_scene(spec), hostile)
    root = ET.fromstring(svg)  # noqa: S314 (our own output) parses: nothing broke out of its attribute or element
    assert root.tag.endswith("svg")
    assert b"<script>" not in svg
    texts = [el.text for el in root.iter() if el.tag.endswith("text")]
    assert hostile in texts
    assert isinstance(build_scene(spec).shapes[0], Path | Rect | Text)
