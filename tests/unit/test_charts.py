"""Chart rendering: PNG/SVG output, unit formatting, thresholds, watermark, fallbacks."""

from __future__ import annotations

import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from metric_stream.charts import (
    ChartSpec,
    chart_for_entry,
    chart_for_kpi,
    fallback_chart,
    format_ticks,
    format_value,
    moving_average,
    ohlc_from_points,
    render_chart,
)
from metric_stream.models.config import FallbackConfig
from metric_stream.models.kpi import AnalysisConfig, CollectorSource, KpiDefinition, Thresholds
from metric_stream.models.timeseries import DataPoint

BASE = datetime(2026, 9, 1, tzinfo=UTC)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG_NS = "{http://www.w3.org/2000/svg}"


def series(
    n: int = 60, start: float = 60_000.0, step: float = 150.0
) -> list[tuple[datetime, float]]:
    return [(BASE + timedelta(days=d), start + step * d + (d % 5) * 40) for d in range(n)]


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def svg_tree(data: bytes) -> ET.Element:
    return ET.fromstring(data)  # noqa: S314 - our own output


def svg_texts(root: ET.Element) -> list[str]:
    return ["".join(el.itertext()) for el in root.iter(f"{SVG_NS}text")]


def svg_ids(root: ET.Element) -> set[str]:
    return {el.attrib["id"] for el in root.iter() if "id" in el.attrib}


def entry(**config: object) -> KpiDefinition:
    return KpiDefinition(
        id="btc-price",
        name="Bitcoin price",
        kpi_type="price",
        source=CollectorSource(collector="demo"),
        unit="USD",
        analysis_config=AnalysisConfig.model_validate(config),
    )


def points(kpi: str, n: int = 40, *, ohlc: bool = False) -> list[DataPoint]:
    out = []
    for d in range(n):
        value = 100.0 + d
        meta = (
            {"open": value - 1, "high": value + 2, "low": value - 3, "close": value} if ohlc else {}
        )
        out.append(
            DataPoint(kpi_id=kpi, timestamp=BASE + timedelta(days=d), value=value, metadata=meta)
        )
    return out


@pytest.fixture(scope="module")
def usd_svg() -> bytes:
    spec = ChartSpec(
        title="Bitcoin price",
        kind="line",
        series={"btc": series()},
        unit="USD",
        high=75_000,
        low=58_000,
        demo=True,
    )
    return render_chart(spec, fmt="svg")


# ---------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (1234.5, "USD", "$1,234.50"),
        (97_250.0, "USD", "$97,250"),
        (-1234.5, "USD", "-$1,234.50"),
        (1.2e12, "", "1.2T"),
        (1.2e12, "USD", "$1.2T"),
        (3.4e9, "", "3.4B"),
        (56.7e6, "", "56.7M"),
        (12_345.0, "", "12.3k"),
        (45.67, "%", "45.7%"),
        (0.456, "%", "0.46%"),
        (2.3456, "", "2.35"),
        (0.12345, "", "0.123"),
        (0.00015, "", "0.00015"),
        (0.0, "", "0"),
        (12_345.0, "BTC", "12.3k BTC"),
        (5.0, "EUR", "€5.00"),
    ],
)
def test_format_value(value: float, unit: str, expected: str) -> None:
    assert format_value(value, unit) == expected


def test_format_ticks_adds_decimals_only_when_ticks_would_collide() -> None:
    assert format_ticks([1.21e12, 1.22e12, 1.23e12], "") == ["1.21T", "1.22T", "1.23T"]
    assert format_ticks([40.0, 50.0, 60.0], "%") == ["40.0%", "50.0%", "60.0%"]


def test_moving_average_is_trailing_and_needs_a_full_window() -> None:
    pts = [(BASE + timedelta(days=d), float(d)) for d in range(10)]
    assert moving_average(pts, 30) == []
    ma = moving_average(pts, 7)
    assert len(ma) == 4
    assert ma[0] == (BASE + timedelta(days=6), 3.0)


def test_ohlc_from_points_keeps_only_complete_numeric_candles() -> None:
    pts = points("btc-price", 3, ohlc=True)
    pts.append(
        DataPoint(
            kpi_id="btc-price",
            timestamp=BASE - timedelta(days=1),
            value=1,
            metadata={"open": 1, "high": "x", "low": 0, "close": 1},
        )
    )
    pts.append(DataPoint(kpi_id="btc-price", timestamp=BASE - timedelta(days=2), value=1))
    candles = ohlc_from_points(reversed(pts))
    assert [c[0] for c in candles] == [BASE + timedelta(days=d) for d in range(3)]
    assert candles[0][1:] == (99.0, 102.0, 97.0, 100.0)


# ---------------------------------------------------------------- rendering


def test_png_has_signature_and_the_expected_size() -> None:
    data = render_chart(ChartSpec(title="BTC", series={"btc": series()}, unit="USD"))
    assert png_size(data) == (880, 352)


def test_svg_has_title_units_thresholds_averages_and_watermark(usd_svg: bytes) -> None:
    root = svg_tree(usd_svg)
    texts = svg_texts(root)
    ids = svg_ids(root)
    assert "Bitcoin price" in texts
    assert any(t.startswith("$") and "," in t for t in texts), texts
    assert "DEMO" in texts
    assert {"threshold-high", "threshold-low", "threshold-band", "demo-watermark"} <= ids
    assert {"series-0", "sma-7", "sma-30"} <= ids


def test_no_watermark_and_no_thresholds_unless_asked() -> None:
    spec = ChartSpec(title="Fear & Greed", series={"fg": series(10, 40, 1)}, unit="%")
    root = svg_tree(render_chart(spec, fmt="svg"))
    texts = svg_texts(root)
    assert "DEMO" not in texts
    assert any(t.endswith("%") for t in texts), texts
    assert not any(i.startswith("threshold") for i in svg_ids(root))
    assert "sma-30" not in svg_ids(root)  # 10 points: no 30-day average


def test_large_values_use_compact_ticks() -> None:
    spec = ChartSpec(title="Market cap", series={"cap": series(20, 2.1e12, 1e10)}, unit="USD")
    texts = svg_texts(svg_tree(render_chart(spec, fmt="svg")))
    assert any(t.startswith("$") and t.endswith("T") for t in texts), texts


def test_multi_line_draws_one_line_per_series() -> None:
    spec = ChartSpec(
        title="Dominance",
        kind="multi-line",
        unit="%",
        series={
            name: series(30, start, 0.1) for name, start in (("btc", 55), ("eth", 15), ("usdt", 5))
        },
    )
    ids = svg_ids(svg_tree(render_chart(spec, fmt="svg")))
    assert {"series-0", "series-1", "series-2"} <= ids
    assert "series-3" not in ids
    assert not any(i.startswith("sma-") for i in ids)


def test_candlestick_and_bar_render() -> None:
    candles = ohlc_from_points(points("btc-price", 20, ohlc=True))
    spec = ChartSpec(title="BTC candles", kind="candlestick", candles=candles, unit="USD", high=130)
    ids = svg_ids(svg_tree(render_chart(spec, fmt="svg")))
    assert {"candle-wicks", "candle-0", "candle-19", "threshold-high"} <= ids
    assert png_size(render_chart(spec)) == (880, 352)
    bar = ChartSpec(title="Funding", kind="bar", series={"f": series(15, -0.01, 0.001)})
    assert "series-0-bar-14" in svg_ids(svg_tree(render_chart(bar, fmt="svg")))


@pytest.mark.parametrize(
    "spec",
    [
        ChartSpec(title="Nothing", series={}),
        ChartSpec(title="Nothing", series={"btc": []}),
        ChartSpec(title="Nothing", kind="candlestick", series={"btc": series(3)}),
    ],
)
def test_nothing_to_draw_is_a_clear_value_error(spec: ChartSpec) -> None:
    with pytest.raises(ValueError, match="has no"):
        render_chart(spec)


def test_bad_kind_and_format_are_refused() -> None:
    with pytest.raises(ValueError, match="chart kind"):
        ChartSpec(title="x", kind="pie", series={"a": series(2)})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="format"):
        render_chart(ChartSpec(title="x", series={"a": series(2)}), fmt="gif")  # type: ignore[arg-type]


def test_same_input_gives_the_same_bytes(usd_svg: bytes) -> None:
    spec = ChartSpec(
        title="Bitcoin price",
        kind="line",
        series={"btc": series()},
        unit="USD",
        high=75_000,
        low=58_000,
        demo=True,
    )
    assert render_chart(spec, fmt="svg") == usd_svg
    assert render_chart(spec) == render_chart(spec)


# ---------------------------------------------------------------- fallback


def test_fallback_image_names_the_chart_and_the_reason() -> None:
    spec = ChartSpec(title="Bitcoin price", series={})
    config = FallbackConfig(chart="image")
    png = fallback_chart(spec, config, "no points yet", "png")
    assert png_size(png) == (550, 154)
    texts = svg_texts(svg_tree(fallback_chart(spec, config, "no points " * 40, "svg")))
    assert "Bitcoin price" in texts and config.chart_text in texts
    reason = " ".join(t for t in texts if t.startswith(("no", "points")))  # wrapped lines
    assert reason.startswith("no points") and reason.endswith("…") and len(reason) <= 140


def test_fallback_text_is_the_configured_text_and_the_reason() -> None:
    config = FallbackConfig(chart="text", chart_text="Chart unavailable.")
    data = fallback_chart(ChartSpec(title="x"), config, "matplotlib failed", "png")
    assert data.decode("utf-8") == "Chart unavailable. (matplotlib failed)"


# ---------------------------------------------------------------- specs from the registry


def test_chart_for_kpi_takes_type_thresholds_and_unit_from_the_entry() -> None:
    spec = chart_for_kpi(
        entry(chartType="candlestick", high=150, low=90),
        "btc-price",
        points("btc-price", ohlc=True),
        demo=True,
    )
    assert (spec.kind, spec.unit, spec.high, spec.low, spec.demo) == (
        "candlestick",
        "USD",
        150,
        90,
        True,
    )
    assert len(spec.candles) == 40 and spec.title == "Bitcoin price"
    plain = chart_for_kpi(
        entry(chartType="candlestick"), "btc-price", points("btc-price"), demo=False
    )
    assert plain.kind == "line" and plain.series["btc-price"][0] == (BASE, 100.0)


def test_chart_for_entry_draws_a_multi_kpi_source_as_lines() -> None:
    multi = KpiDefinition(
        id="cmc-multi",
        name="Market overview",
        kpi_type="market",
        unit="%",
        source=CollectorSource(collector="demo"),
        kpi_ids=["cmc-btc-dominance", "cmc-eth-dominance", "cmc-usdt-dominance"],
        analysis_config=AnalysisConfig(
            chart_type="multi-line", indicators={"cmc-btc-dominance": Thresholds(high=70)}
        ),
    )
    by_kpi = {kpi: points(kpi, 10) for kpi in multi.yields}
    spec = chart_for_entry(multi, by_kpi, demo=True)
    assert spec.kind == "multi-line" and list(spec.series) == multi.yields and spec.demo
    ids = svg_ids(svg_tree(render_chart(spec, fmt="svg")))
    assert {"series-0", "series-1", "series-2"} <= ids
    single = chart_for_entry(multi, {"cmc-btc-dominance": by_kpi["cmc-btc-dominance"]})
    assert single.kind == "line" and single.high == 70 and "cmc-btc-dominance" in single.title


# ---------------------------------------------------------------- import cost


def test_importing_charts_does_not_load_matplotlib() -> None:
    code = (
        "import sys, metric_stream.charts, metric_stream.charts.render; "
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'); "
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
