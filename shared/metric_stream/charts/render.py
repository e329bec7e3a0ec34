"""Chart rendering for the report: one consistent style, PNG or SVG bytes, deterministic.

matplotlib is imported inside the rendering functions only (object API, Agg/SVG
canvases, never pyplot), so importing this module stays cheap for callers that
never draw a chart (the API, the CLI, the admin console).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Literal

from metric_stream.models.config import FallbackConfig
from metric_stream.models.kpi import ChartType, KpiDefinition
from metric_stream.models.timeseries import DataPoint

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.ticker import Formatter

ChartFormat = Literal["png", "svg"]
Point = tuple[datetime, float]
Candle = tuple[datetime, float, float, float, float]
"""(timestamp, open, high, low, close)."""

CHART_KINDS: tuple[ChartType, ...] = ("line", "bar", "candlestick", "multi-line")
MOVING_AVERAGES = (7, 30)
FIGSIZE = (8.0, 3.2)
FALLBACK_FIGSIZE = (5.0, 1.4)
DPI = 110
MARGINS = {"left": 0.105, "right": 0.985, "top": 0.86, "bottom": 0.1}
HASH_SALT = "metric-stream"
MAX_REASON_CHARS = 140
OHLC_KEYS = ("open", "high", "low", "close")

CURRENCY_SYMBOLS = {"USD": "$", "USDT": "$", "USDC": "$", "$": "$", "EUR": "€", "GBP": "£"}
COMPACT_STEPS = ((1e12, "T"), (1e9, "B"), (1e6, "M"))

# One palette, one style: every chart of a report looks the same.
SERIES_COLORS = ("#1f5fa8", "#d9822b", "#2e8b57", "#8e44ad", "#c0392b", "#5d6d7e")
SMA_COLORS = {7: "#e67e22", 30: "#7f8c8d"}
UP_COLOR = "#2e8b57"
DOWN_COLOR = "#c0392b"
THRESHOLD_COLOR = "#c0392b"
STYLE: dict[str, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 8.5,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.edgecolor": "#9aa0a6",
    "axes.linewidth": 0.8,
    "axes.grid": True,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "grid.color": "#e3e6ea",
    "grid.linewidth": 0.6,
    "xtick.color": "#3c4043",
    "ytick.color": "#3c4043",
    "legend.fontsize": 7.5,
    "legend.frameon": False,
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "svg.fonttype": "none",  # text stays text in SVG
    "svg.hashsalt": HASH_SALT,  # stable ids in SVG
    "path.simplify": True,
}


@dataclass(frozen=True)
class ChartSpec:
    """What to draw. `series` maps a legend name to its (timestamp, value) points;
    a candlestick chart takes its bars from `candles` instead (see `ohlc_from_points`).
    `high`/`low` are the alert thresholds, drawn as dashed lines (and a band
    when both are set)."""

    title: str
    kind: ChartType = "line"
    series: Mapping[str, Sequence[Point]] = field(default_factory=dict)
    unit: str = ""
    high: float | None = None
    low: float | None = None
    demo: bool = False
    candles: Sequence[Candle] = ()
    moving_averages: tuple[int, ...] = MOVING_AVERAGES

    def __post_init__(self) -> None:
        if self.kind not in CHART_KINDS:
            raise ValueError(f"chart kind must be one of {list(CHART_KINDS)}, not {self.kind!r}")

    @property
    def is_empty(self) -> bool:
        if self.kind == "candlestick":
            return not self.candles
        return not any(self.series.values())


# --------------------------------------------------------------------------- values


def format_value(value: float, unit: str = "", *, decimals: int | None = None) -> str:
    """A value as shown on the value axis (and in threshold labels).

    - `%`: one decimal (`45.7%`), two below 1 (`0.45%`);
    - currencies (`USD` → `$`, `EUR` → `€`, `GBP` → `£`) and plain numbers:
      compact from a million (`$1.2T`, `3.4B`, `56.7M`); from 10,000 currencies keep
      thousands separators (`$97,250`) and other numbers go compact (`12.3k`); from
      1,000 two decimals with separators (`$1,234.50`, `1,234.50`);
      below that ratios keep 2 decimals (`2.35`), below 1 three (`0.123`), below 0.01
      three significant digits (`0.00015`); zero is `0`;
    - any other unit is appended after a space (`12.3k BTC`).

    `decimals` overrides the number of decimals (the axis raises it when ticks would
    otherwise read the same, e.g. `1.21T`, `1.22T`).
    """
    if not math.isfinite(value):
        return ""
    unit = unit.strip()
    sign = "-" if value < 0 else ""
    magnitude = abs(value)
    if unit == "%":
        if decimals is None:
            decimals = 2 if 0 < magnitude < 1 else 1
        return f"{sign}{magnitude:.{decimals}f}%"
    symbol = CURRENCY_SYMBOLS.get(unit.upper())
    number = _number(magnitude, currency=symbol is not None, decimals=decimals)
    if symbol is not None:
        return f"{sign}{symbol}{number}"
    text = f"{sign}{number}"
    return f"{text} {unit}" if unit else text


def _number(magnitude: float, *, currency: bool, decimals: int | None) -> str:
    def fixed(number: float, default: int, separators: str = "") -> str:
        places = default if decimals is None else decimals
        return f"{number:{separators}.{places}f}"

    for scale, suffix in COMPACT_STEPS:
        if magnitude >= scale:
            return fixed(magnitude / scale, 1) + suffix
    if magnitude >= 1e4:
        return fixed(magnitude, 0, ",") if currency else fixed(magnitude / 1e3, 1) + "k"
    if magnitude >= 1e3:
        return fixed(magnitude, 2, ",")
    if magnitude == 0 and decimals is None:
        return "0"
    if magnitude >= 1 or magnitude == 0:
        return fixed(magnitude, 2)
    if magnitude >= 0.01 or decimals is not None:
        return fixed(magnitude, 3)
    return f"{magnitude:.3g}"


def format_ticks(values: Sequence[float], unit: str = "") -> list[str]:
    """Labels of axis ticks: `format_value`, with more decimals (up to 6) when two
    distinct ticks would otherwise read the same."""
    labels = [format_value(value, unit) for value in values]
    decimals = 0
    while len(set(labels)) < len(set(values)) and decimals < 6:
        decimals += 1
        labels = [format_value(value, unit, decimals=decimals) for value in values]
    return labels


def moving_average(points: Sequence[Point], window: int) -> list[Point]:
    """Trailing simple moving average over `window` consecutive points (the series is
    daily, so a window of 7 points is 7 days); empty when the series is shorter."""
    if window < 1:
        raise ValueError("window must be at least 1")
    out: list[Point] = []
    total = 0.0
    for index, (timestamp, value) in enumerate(points):
        total += value
        if index >= window:
            total -= points[index - window][1]
        if index >= window - 1:
            out.append((timestamp, total / window))
    return out


def _finite_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def ohlc_from_points(points: Iterable[DataPoint]) -> list[Candle]:
    """The candles of the points whose metadata holds numeric `open`, `high`, `low` and
    `close` (others are skipped), sorted by timestamp."""
    candles: list[Candle] = []
    for point in points:
        values = [_finite_number(point.metadata.get(key)) for key in OHLC_KEYS]
        if any(v is None for v in values):
            continue
        o, h, lo, c = (float(v) for v in values if v is not None)
        candles.append((point.timestamp, o, max(h, o, c), min(lo, o, c), c))
    candles.sort(key=lambda candle: candle[0])
    return candles


def _series_of(points: Iterable[DataPoint]) -> list[Point]:
    return sorted(((p.timestamp, float(p.value)) for p in points), key=lambda item: item[0])


# --------------------------------------------------------------------------- specs


def chart_for_kpi(
    entry: KpiDefinition, kpi_id: str, points: Sequence[DataPoint], *, demo: bool = False
) -> ChartSpec:
    """The chart of one KPI of a registry entry: chart type from `analysisConfig`
    (`multi-line` becomes `line` for a single KPI; `candlestick` becomes `line` when no
    point carries OHLC metadata), thresholds from `thresholds_for`, unit from the entry."""
    thresholds = entry.thresholds_for(kpi_id)
    kind: ChartType = entry.analysis_config.chart_type
    candles: list[Candle] = []
    if kind == "multi-line":
        kind = "line"
    elif kind == "candlestick":
        candles = ohlc_from_points(points)
        if not candles:
            kind = "line"
    title = entry.name if kpi_id == entry.id else f"{entry.name} — {kpi_id}"
    return ChartSpec(
        title=title,
        kind=kind,
        series={kpi_id: _series_of(points)},
        unit=entry.unit,
        high=thresholds.high,
        low=thresholds.low,
        demo=demo,
        candles=candles,
    )


def chart_for_entry(
    entry: KpiDefinition, points_by_kpi: Mapping[str, Sequence[DataPoint]], demo: bool = False
) -> ChartSpec:
    """The chart of a whole entry: a multi-KPI entry charted as `multi-line` gets one
    line per yielded KPI that has points (in `kpiIds` order, no thresholds since each KPI
    has its own); anything else is `chart_for_kpi` of its first KPI with points."""
    yielded = [kpi for kpi in entry.yields if points_by_kpi.get(kpi)]
    if entry.analysis_config.chart_type == "multi-line" and len(yielded) > 1:
        return ChartSpec(
            title=entry.name,
            kind="multi-line",
            series={kpi: _series_of(points_by_kpi[kpi]) for kpi in yielded},
            unit=entry.unit,
            demo=demo,
        )
    kpi_id = yielded[0] if yielded else entry.yields[0]
    return chart_for_kpi(entry, kpi_id, points_by_kpi.get(kpi_id, []), demo=demo)


# --------------------------------------------------------------------------- render


def _save(figure: Figure, fmt: ChartFormat) -> bytes:
    buffer = io.BytesIO()
    if fmt == "svg":
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": "metric-stream"})
    elif fmt == "png":
        figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    else:
        raise ValueError(f"chart format must be 'png' or 'svg', not {fmt!r}")
    return buffer.getvalue()


def _bar_width(timestamps: Sequence[datetime]) -> float:
    """Width of a bar in days: 70% of the smallest gap between points (one day alone)."""
    gaps = [(b - a).total_seconds() / 86_400 for a, b in pairwise(timestamps)]
    positive = [gap for gap in gaps if gap > 0]
    return 0.7 * min(positive) if positive else 0.7


def _x(timestamps: Iterable[datetime]) -> list[float]:
    """Timestamps as matplotlib date numbers (days since the epoch, UTC)."""
    from matplotlib.dates import date2num

    return [float(date2num(timestamp)) for timestamp in timestamps]  # type: ignore[no-untyped-call]


def _draw_lines(axes: Axes, spec: ChartSpec) -> None:
    series = [(name, points) for name, points in spec.series.items() if points]
    for index, (name, points) in enumerate(series):
        xs = _x(timestamp for timestamp, _ in points)
        ys = [value for _, value in points]
        axes.plot(
            xs,
            ys,
            color=SERIES_COLORS[index % len(SERIES_COLORS)],
            linewidth=1.6,
            marker="o" if len(points) == 1 else None,
            markersize=3,
            label=name,
            gid=f"series-{index}",
        )
    if spec.kind == "line" and len(series) == 1:
        points = series[0][1]
        for window in spec.moving_averages:
            average = moving_average(points, window)
            if average:
                axes.plot(
                    _x(t for t, _ in average),
                    [v for _, v in average],
                    color=SMA_COLORS.get(window, "#95a5a6"),
                    linewidth=1.0,
                    linestyle="-" if window == min(spec.moving_averages) else "--",
                    label=f"{window}-day average",
                    gid=f"sma-{window}",
                )


def _draw_bars(axes: Axes, spec: ChartSpec) -> None:
    series = [(name, points) for name, points in spec.series.items() if points]
    for index, (name, points) in enumerate(series):
        xs = _x(timestamp for timestamp, _ in points)
        width = _bar_width([timestamp for timestamp, _ in points]) / len(series)
        offset = (index - (len(series) - 1) / 2) * width
        container = axes.bar(
            [x + offset for x in xs],
            [value for _, value in points],
            width=width,
            color=SERIES_COLORS[index % len(SERIES_COLORS)],
            label=name,
        )
        container.set_label(name)
        for bar_index, patch in enumerate(container.patches):
            patch.set_gid(f"series-{index}-bar-{bar_index}")


def _draw_candles(axes: Axes, spec: ChartSpec) -> None:
    candles = spec.candles
    xs = _x(candle[0] for candle in candles)
    colors = [UP_COLOR if c >= o else DOWN_COLOR for _, o, _, _, c in candles]
    axes.vlines(
        xs,
        [low for _, _, _, low, _ in candles],
        [high for _, _, high, _, _ in candles],
        colors=colors,
        linewidth=0.8,
        gid="candle-wicks",
    )
    width = _bar_width([candle[0] for candle in candles])
    bodies = axes.bar(
        xs,
        [max(abs(c - o), 1e-12) for _, o, _, _, c in candles],
        bottom=[min(o, c) for _, o, _, _, c in candles],
        width=width,
        color=colors,
        edgecolor=colors,
        linewidth=0.6,
    )
    for index, patch in enumerate(bodies.patches):
        patch.set_gid(f"candle-{index}")
    # The wicks do not always widen the data limits: frame the full low..high range.
    # Thresholds are framed too, like line charts do.
    bounds = [v for v in (spec.high, spec.low) if v is not None]
    bottom = min([candle[3] for candle in candles] + bounds)
    top = max([candle[2] for candle in candles] + bounds)
    pad = (top - bottom) * 0.05 or abs(top) * 0.05 or 1.0
    axes.set_ylim(bottom - pad, top + pad)


def _draw_thresholds(axes: Axes, spec: ChartSpec) -> None:
    if spec.high is not None and spec.low is not None:
        axes.axhspan(spec.low, spec.high, color="#2e8b57", alpha=0.05, gid="threshold-band")
    for name, value in (("high", spec.high), ("low", spec.low)):
        if value is not None:
            axes.axhline(
                value,
                color=THRESHOLD_COLOR,
                linewidth=0.9,
                linestyle=(0, (4, 3)),
                label=f"{name} threshold {format_value(value, spec.unit)}",
                gid=f"threshold-{name}",
            )


def _watermark(figure: Figure) -> None:
    figure.text(
        0.5,
        0.5,
        "DEMO",
        fontsize=72,
        fontweight="bold",
        color="#7f8c8d",
        alpha=0.12,
        rotation=18,
        ha="center",
        va="center",
        zorder=10,
        gid="demo-watermark",
    )


def _value_formatter(unit: str) -> Formatter:
    from matplotlib.ticker import Formatter

    class ValueFormatter(Formatter):
        """Value-axis labels in the KPI's unit (see `format_ticks`)."""

        def __call__(self, x: float, pos: int | None = None) -> str:
            return format_value(x, unit)

        def format_ticks(self, values: list[float]) -> list[str]:
            self.set_locs(values)
            return format_ticks(values, unit)

    return ValueFormatter()


def render_chart(spec: ChartSpec, *, fmt: ChartFormat = "png") -> bytes:
    """The chart as PNG (880x352 px) or SVG bytes; the same spec gives the same bytes.

    Raises ValueError when there is nothing to draw (callers then use
    `fallback_chart`)."""
    if spec.is_empty:
        what = "OHLC candles" if spec.kind == "candlestick" else "points"
        raise ValueError(f"chart {spec.title!r} has no {what} to draw")
    if fmt not in ("png", "svg"):
        raise ValueError(f"chart format must be 'png' or 'svg', not {fmt!r}")

    from matplotlib import rc_context
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    with rc_context(STYLE):  # type: ignore[arg-type]
        # Fixed margins, not a layout engine: constrained layout draws every chart twice
        # (once to measure); these margins fit value labels of up to ~12 characters.
        figure = Figure(figsize=FIGSIZE, dpi=DPI)
        figure.subplots_adjust(**MARGINS)
        axes = figure.add_subplot()
        if spec.kind == "candlestick":
            _draw_candles(axes, spec)
        elif spec.kind == "bar":
            _draw_bars(axes, spec)
        else:
            _draw_lines(axes, spec)
        _draw_thresholds(axes, spec)

        axes.set_title(spec.title)
        axes.xaxis_date(UTC)
        locator = AutoDateLocator(tz=UTC, minticks=3, maxticks=8)  # type: ignore[no-untyped-call]
        axes.xaxis.set_major_locator(locator)
        dates = ConciseDateFormatter(locator, tz=UTC)  # type: ignore[no-untyped-call]
        axes.xaxis.set_major_formatter(dates)
        axes.yaxis.set_major_locator(MaxNLocator(nbins=6))
        unit = spec.unit
        axes.yaxis.set_major_formatter(_value_formatter(unit))
        axes.margins(x=0.01)
        handles, _labels = axes.get_legend_handles_labels()
        if len(handles) > 1:
            # Above the plot, right of the title: never over the data or the thresholds.
            axes.legend(
                loc="lower right",
                bbox_to_anchor=(1.0, 1.0),
                ncols=min(len(handles), 4),
                borderaxespad=0.2,
            )
        if spec.demo:
            _watermark(figure)
        return _save(figure, fmt)


def fallback_chart(
    spec: ChartSpec, config: FallbackConfig, reason: str, fmt: ChartFormat = "png"
) -> bytes:
    """What stands in for a chart that could not be drawn: with `chart = "image"`, a
    small image naming the chart and the (shortened) reason; with `"text"`, the
    configured `chart_text` and the reason as UTF-8 text."""
    short = " ".join(reason.split())
    if len(short) > MAX_REASON_CHARS:
        short = short[: MAX_REASON_CHARS - 1] + "…"
    if config.chart == "text":
        text = config.chart_text if not short else f"{config.chart_text} ({short})"
        return text.encode("utf-8")
    if fmt not in ("png", "svg"):
        raise ValueError(f"chart format must be 'png' or 'svg', not {fmt!r}")

    from matplotlib import rc_context
    from matplotlib.figure import Figure

    with rc_context(STYLE):  # type: ignore[arg-type]
        figure = Figure(figsize=FALLBACK_FIGSIZE, dpi=DPI)
        figure.text(0.04, 0.72, spec.title, fontsize=9.5, fontweight="bold", gid="fallback-title")
        figure.text(0.04, 0.45, config.chart_text, fontsize=8.5, color="#3c4043")
        if short:
            figure.text(
                0.04, 0.2, short, fontsize=7.5, color="#7f8c8d", wrap=True, gid="fallback-reason"
            )
        if spec.demo:
            figure.text(
                0.96, 0.72, "DEMO", fontsize=9, color="#7f8c8d", ha="right", gid="demo-watermark"
            )
        return _save(figure, fmt)
