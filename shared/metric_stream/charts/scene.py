"""Charts as vector scenes: the report's fast path.

`build_scene` lays a `ChartSpec` out once, in plain Python (scales, "nice" value ticks,
calendar date ticks, moving averages, threshold band, candles, legend), as a list of
primitives in points (1/72 inch, y upwards). Two writers turn a scene into output:
`draw_scene` paints it on a reportlab canvas (the PDF embeds vectors, no image is
rasterised or compressed) and `scene_svg` writes an SVG document. Same style as the
matplotlib renderer in `render.py`, which stays the PNG path (the API and the LLM's
image step).

Long series are thinned per horizontal point (first, minimum, maximum, last of each
column), which keeps every visible extreme and caps the path at ~4 segments per point
of width.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Literal
from xml.sax.saxutils import escape

from metric_stream.charts.render import (
    DOWN_COLOR,
    SERIES_COLORS,
    SMA_COLORS,
    THRESHOLD_COLOR,
    UP_COLOR,
    ChartSpec,
    Point,
    format_ticks,
    format_value,
    moving_average,
)

if TYPE_CHECKING:
    from reportlab.lib.colors import Color
    from reportlab.pdfgen.canvas import Canvas

Anchor = Literal["start", "middle", "end"]

AXIS_COLOR = "#9aa0a6"
GRID_COLOR = "#e3e6ea"
TEXT_COLOR = "#3c4043"
BAND_COLOR = "#eef7f1"
FONT_SIZE = 6.5
CHAR_WIDTH = 0.55  # average glyph width / font size (Helvetica/DejaVu), for label layout
MAX_LEGEND_CHARS = 40
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Path:
    points: tuple[tuple[float, float], ...]
    color: str
    width: float = 1.0
    dash: tuple[float, ...] = ()


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    fill: str
    stroke: str | None = None


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    size: float = FONT_SIZE
    color: str = TEXT_COLOR
    anchor: Anchor = "start"
    angle: float = 0.0
    bold: bool = False


Shape = Path | Rect | Text


@dataclass
class Scene:
    width: float
    height: float
    shapes: list[Shape] = field(default_factory=list)

    def texts(self) -> list[str]:
        return [s.text for s in self.shapes if isinstance(s, Text)]


# ---------------------------------------------------------------- scales and ticks
def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values within low..high: steps of 1, 2, 2.5 or 5 x 10^k, the one whose
    number of ticks is closest to `count` (fewer rather than more on a tie)."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    magnitude = 10 ** math.floor(math.log10((high - low) / max(count - 1, 1)))
    steps = [m * magnitude for m in (0.5, 1, 2, 2.5, 5, 10, 20)]

    def ticks_of(step: float) -> list[float]:
        first = math.ceil(low / step - 1e-9)
        last = math.floor(high / step + 1e-9)
        return [float(f"{n * step:.12g}") for n in range(first, last + 1)][:50]

    candidates = [ticks_of(step) for step in steps]
    return min((t for t in candidates if len(t) >= 2), key=lambda t: (abs(len(t) - count), len(t)),
               default=candidates[-1])


def value_range(values: Iterable[float]) -> tuple[float, float]:
    """low..high with 5 % padding; a constant series gets a band around its value."""
    items = list(values)
    low, high = min(items), max(items)
    if high == low:
        pad = abs(low) * 0.05 or 1.0
        return low - pad, high + pad
    pad = (high - low) * 0.05
    return low - pad, high + pad


def _month_add(day: date, months: int) -> date:
    index = day.month - 1 + months
    return date(day.year + index // 12, index % 12 + 1, 1)


def date_ticks(start: datetime, end: datetime, max_ticks: int = 7) -> list[tuple[datetime, str]]:
    """Calendar ticks within start..end: days, weeks, months or years, whichever keeps
    at most `max_ticks`; labels are short (`Mar`, `2026` at a new year, `12 Mar`)."""
    span_days = (end - start).total_seconds() / 86_400
    first = start.astimezone(UTC).date()
    for step in (1, 2, 7, 14):
        if span_days / step <= max_ticks:
            ticks = []
            day = first if step < 7 else first + timedelta(days=(7 - first.weekday()) % 7)
            while (moment := datetime(day.year, day.month, day.day, tzinfo=UTC)) <= end:
                if moment >= start:
                    ticks.append((moment, f"{day.day} {MONTHS[day.month - 1]}"))
                day += timedelta(days=step)
            return ticks
    for months in (1, 2, 3, 6, 12, 24, 60, 120):
        if span_days / (30.4 * months) <= max_ticks:
            ticks = []
            day = _month_add(first, 0 if first.day == 1 else 1)
            while (day.month - 1) % months:
                day = _month_add(day, 1)
            while (moment := datetime(day.year, day.month, 1, tzinfo=UTC)) <= end:
                label = str(day.year) if day.month == 1 or months >= 12 else MONTHS[day.month - 1]
                ticks.append((moment, label))
                day = _month_add(day, months)
            return ticks
    return [(start, str(first.year)), (end, str(end.year))]


def thin(points: Sequence[tuple[float, float]], columns: int) -> list[tuple[float, float]]:
    """At most ~4 points per column: the first, lowest, highest and last of each."""
    if len(points) <= columns * 4:
        return list(points)
    x0 = points[0][0]
    span = (points[-1][0] - x0) or 1.0
    out: list[tuple[float, float]] = []
    bucket: list[tuple[float, float]] = []
    current = -1
    for point in points:
        column = int((point[0] - x0) / span * (columns - 1))
        if column != current and bucket:
            out.extend(_extremes(bucket))
            bucket = []
        current = column
        bucket.append(point)
    out.extend(_extremes(bucket))
    return out


def _extremes(bucket: list[tuple[float, float]]) -> list[tuple[float, float]]:
    if len(bucket) <= 2:
        return bucket
    low = min(bucket, key=lambda p: p[1])
    high = max(bucket, key=lambda p: p[1])
    middle = sorted({low, high}, key=lambda p: p[0])
    return [bucket[0], *middle, bucket[-1]]


# ---------------------------------------------------------------- layout
@dataclass(frozen=True)
class _Frame:
    left: float
    bottom: float
    width: float
    height: float
    x_low: float
    x_high: float
    y_low: float
    y_high: float

    def x(self, seconds: float) -> float:
        return self.left + (seconds - self.x_low) / (self.x_high - self.x_low) * self.width

    def y(self, value: float) -> float:
        return self.bottom + (value - self.y_low) / (self.y_high - self.y_low) * self.height


def _seconds(moment: datetime) -> float:
    return moment.timestamp()


def _spec_values(spec: ChartSpec) -> list[float]:
    if spec.kind == "candlestick":
        values = [v for c in spec.candles for v in (c[2], c[3])]
    else:
        values = [v for points in spec.series.values() for _, v in points]
    return values + [v for v in (spec.high, spec.low) if v is not None]


def _spec_times(spec: ChartSpec) -> list[datetime]:
    if spec.kind == "candlestick":
        return [c[0] for c in spec.candles]
    return [t for points in spec.series.values() for t, _ in points]


def build_scene(spec: ChartSpec, width: float = 480.0, height: float = 170.0) -> Scene:
    """The chart as primitives; ValueError when there is nothing to draw (as `render_chart`)."""
    if spec.is_empty:
        what = "OHLC candles" if spec.kind == "candlestick" else "points"
        raise ValueError(f"chart {spec.title!r} has no {what} to draw")
    values = [v for v in _spec_values(spec) if math.isfinite(v)]
    times = _spec_times(spec)
    y_low, y_high = value_range(values)
    ticks = [t for t in nice_ticks(y_low, y_high) if y_low <= t <= y_high]
    labels = format_ticks(ticks, spec.unit)
    label_width = max((len(label) for label in labels), default=4) * FONT_SIZE * CHAR_WIDTH
    start, end = min(times), max(times)
    if end - start < timedelta(days=1):
        start, end = start - timedelta(hours=12), end + timedelta(hours=12)
    pad = (end - start) * 0.01
    frame = _Frame(left=label_width + 8, bottom=14, width=width - label_width - 12,
                   height=height - 30, x_low=_seconds(start - pad), x_high=_seconds(end + pad),
                   y_low=y_low, y_high=y_high)
    scene = Scene(width, height)
    _axes(scene, frame, ticks, labels, date_ticks(start, end))
    legend: list[LegendEntry] = []
    banded = spec.high is not None and spec.low is not None
    if spec.high is not None and spec.low is not None:
        top, bottom = frame.y(spec.high), frame.y(spec.low)
        scene.shapes.insert(0, Rect(frame.left, min(top, bottom), frame.width,
                                    abs(top - bottom), BAND_COLOR))
    if spec.kind == "candlestick":
        _candles(scene, frame, spec)
    elif spec.kind == "bar":
        legend += _bars(scene, frame, spec)
    else:
        legend += _lines(scene, frame, spec)
    legend += _thresholds(scene, frame, spec)
    _legend(scene, frame, legend)
    if spec.demo:  # over the band, under the data: the watermark never hides a line
        watermark = Text(frame.left + frame.width / 2, frame.bottom + frame.height / 3,
                         "DEMO", size=44, color="#e8eaed", anchor="middle", angle=12, bold=True)
        scene.shapes.insert(1 if banded else 0, watermark)
    return scene


def _axes(scene: Scene, frame: _Frame, ticks: list[float], labels: list[str],
          dates: list[tuple[datetime, str]]) -> None:
    right = frame.left + frame.width
    for value, label in zip(ticks, labels, strict=True):
        y = frame.y(value)
        scene.shapes.append(Path(((frame.left, y), (right, y)), GRID_COLOR, 0.5))
        scene.shapes.append(Text(frame.left - 3, y - 2.2, label, anchor="end"))
    for moment, label in dates:
        x = frame.x(_seconds(moment))
        scene.shapes.append(Path(((x, frame.bottom), (x, frame.bottom - 2.5)), AXIS_COLOR, 0.6))
        scene.shapes.append(Text(x, frame.bottom - 9, label, anchor="middle"))
    scene.shapes.append(Path(((frame.left, frame.bottom + frame.height),
                              (frame.left, frame.bottom), (right, frame.bottom)), AXIS_COLOR, 0.7))


def _xy(frame: _Frame, points: Sequence[Point]) -> list[tuple[float, float]]:
    x_scale = frame.width / (frame.x_high - frame.x_low)
    y_scale = frame.height / (frame.y_high - frame.y_low)
    x_shift = frame.left - frame.x_low * x_scale
    y_shift = frame.bottom - frame.y_low * y_scale
    return [(t.timestamp() * x_scale + x_shift, v * y_scale + y_shift)
            for t, v in points if math.isfinite(v)]


LegendEntry = tuple[str, str, tuple[float, ...]]
"""(label, color, dash pattern)."""


def _lines(scene: Scene, frame: _Frame, spec: ChartSpec) -> list[LegendEntry]:
    legend: list[LegendEntry] = []
    series = [(name, points) for name, points in spec.series.items() if points]
    columns = max(int(frame.width), 1)
    for index, (name, points) in enumerate(series):
        color = SERIES_COLORS[index % len(SERIES_COLORS)]
        xy = thin(_xy(frame, points), columns)
        if len(xy) == 1:
            x, y = xy[0]
            scene.shapes.append(Rect(x - 1.5, y - 1.5, 3, 3, color))
        else:
            scene.shapes.append(Path(tuple(xy), color, 1.2))
        if len(series) > 1:  # one line needs no legend entry: the section names it
            legend.append((name, color, ()))
    if spec.kind == "line" and len(series) == 1:
        points = series[0][1]
        for window in spec.moving_averages:
            average = moving_average(points, window)
            if len(average) > 1:
                dash: tuple[float, ...] = () if window == min(spec.moving_averages) else (3, 2)
                color = SMA_COLORS.get(window, "#95a5a6")
                scene.shapes.append(Path(tuple(thin(_xy(frame, average), columns)), color, 0.8,
                                         dash))
                legend.append((f"{window}-day average", color, dash))
    return legend


def _bars(scene: Scene, frame: _Frame, spec: ChartSpec) -> list[LegendEntry]:
    series = [(name, points) for name, points in spec.series.items() if points]
    count = max(len(points) for _, points in series)
    slot = frame.width / max(count, 1) * 0.8 / len(series)
    zero = frame.y(min(max(0.0, frame.y_low), frame.y_high))
    legend: list[LegendEntry] = []
    for index, (name, points) in enumerate(series):
        color = SERIES_COLORS[index % len(SERIES_COLORS)]
        offset = (index - (len(series) - 1) / 2) * slot
        for x, y in _xy(frame, points):
            scene.shapes.append(Rect(x + offset - slot / 2, min(y, zero), max(slot, 0.3),
                                     max(abs(y - zero), 0.3), color))
        legend.append((name, color, ()))
    return legend


def _candles(scene: Scene, frame: _Frame, spec: ChartSpec) -> None:
    body = max(frame.width / max(len(spec.candles), 1) * 0.7, 0.4)
    for moment, open_, high, low, close in spec.candles:
        x = frame.x(_seconds(moment))
        color = UP_COLOR if close >= open_ else DOWN_COLOR
        scene.shapes.append(Path(((x, frame.y(low)), (x, frame.y(high))), color, 0.5))
        top, bottom = frame.y(max(open_, close)), frame.y(min(open_, close))
        scene.shapes.append(Rect(x - body / 2, bottom, body, max(top - bottom, 0.4), color))


def _thresholds(scene: Scene, frame: _Frame, spec: ChartSpec) -> list[LegendEntry]:
    legend: list[LegendEntry] = []
    for name, value in (("high", spec.high), ("low", spec.low)):
        if value is not None and frame.y_low <= value <= frame.y_high:
            y = frame.y(value)
            scene.shapes.append(Path(((frame.left, y), (frame.left + frame.width, y)),
                                     THRESHOLD_COLOR, 0.8, (4, 3)))
            legend.append((f"{name} {format_value(value, spec.unit)}",
                           THRESHOLD_COLOR, (4.0, 3.0)))
    return legend


def _legend(scene: Scene, frame: _Frame, entries: list[LegendEntry]) -> None:
    if len(entries) < 2 and not any(dash for _, _, dash in entries):
        return
    x = frame.left
    y = frame.bottom + frame.height + 6
    for name, color, dash in entries:
        label = name if len(name) <= MAX_LEGEND_CHARS else name[: MAX_LEGEND_CHARS - 1] + "…"
        advance = 16 + len(label) * FONT_SIZE * CHAR_WIDTH + 10
        if x + advance > scene.width and x > frame.left:
            break  # the legend is one line: what does not fit is left out
        scene.shapes.append(Path(((x, y + 2), (x + 12, y + 2)), color, 1.2, dash))
        scene.shapes.append(Text(x + 15, y, label))
        x += advance


# ---------------------------------------------------------------- writers
def draw_scene(canvas: Canvas, scene: Scene, x: float, y: float, *,
               font: str = "Helvetica", bold_font: str = "Helvetica-Bold") -> None:
    """Paint the scene on a reportlab canvas with its lower-left corner at (x, y).

    Paths go in as PDF operators (`m`/`l`/`S`, 0.1 pt precision) through `addLiteral`:
    a year of daily points is one short string instead of 365 path-object calls."""
    canvas.saveState()
    canvas.translate(x, y)
    canvas.setLineJoin(1)
    canvas.setLineCap(1)
    for shape in scene.shapes:
        if isinstance(shape, Path):
            canvas.setStrokeColor(_color(shape.color))
            canvas.setLineWidth(shape.width)
            canvas.setDash(list(shape.dash) if shape.dash else [])
            canvas.addLiteral(_path_operators(shape.points))
        elif isinstance(shape, Rect):
            canvas.setFillColor(_color(shape.fill))
            if shape.stroke:
                canvas.setStrokeColor(_color(shape.stroke))
            canvas.rect(shape.x, shape.y, shape.w, shape.h, stroke=1 if shape.stroke else 0,
                        fill=1)
        else:
            _draw_text(canvas, shape, bold_font if shape.bold else font)
    canvas.restoreState()


def _path_operators(points: Sequence[tuple[float, float]]) -> str:
    (x0, y0), *rest = points
    body = " ".join([f"{px:.1f} {py:.1f} l" for px, py in rest])
    return f"{x0:.1f} {y0:.1f} m {body} S"


@cache
def _color(hex_color: str) -> Color:
    from reportlab.lib.colors import HexColor

    return HexColor(hex_color)


def _draw_text(canvas: Canvas, text: Text, font: str) -> None:
    canvas.setFillColor(_color(text.color))
    canvas.setFont(font, text.size)
    if text.angle:
        canvas.saveState()
        canvas.translate(text.x, text.y)
        canvas.rotate(text.angle)
        canvas.drawCentredString(0, 0, text.text)
        canvas.restoreState()
    elif text.anchor == "middle":
        canvas.drawCentredString(text.x, text.y, text.text)
    elif text.anchor == "end":
        canvas.drawRightString(text.x, text.y, text.text)
    else:
        canvas.drawString(text.x, text.y, text.text)


def _n(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def scene_svg(scene: Scene, title: str = "") -> bytes:
    """The scene as a standalone SVG document (y flipped to SVG's downward axis)."""
    h = scene.height
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(scene.width)}pt" '
           f'height="{_n(h)}pt" viewBox="0 0 {_n(scene.width)} {_n(h)}" '
           f'font-family="DejaVu Sans, Helvetica, Arial, sans-serif">']
    if title:
        out.append(f"<title>{escape(title)}</title>")
    out.append(f'<rect width="{_n(scene.width)}" height="{_n(h)}" fill="white"/>')
    for shape in scene.shapes:
        if isinstance(shape, Path):
            points = " ".join(f"{_n(px)},{_n(h - py)}" for px, py in shape.points)
            dashes = " ".join(_n(d) for d in shape.dash)
            dash = f' stroke-dasharray="{dashes}"' if shape.dash else ""
            out.append(f'<polyline points="{points}" fill="none" stroke="{shape.color}" '
                       f'stroke-width="{_n(shape.width)}" stroke-linejoin="round"{dash}/>')
        elif isinstance(shape, Rect):
            stroke = f' stroke="{shape.stroke}"' if shape.stroke else ""
            out.append(f'<rect x="{_n(shape.x)}" y="{_n(h - shape.y - shape.h)}" '
                       f'width="{_n(shape.w)}" height="{_n(shape.h)}" '
                       f'fill="{shape.fill}"{stroke}/>')
        else:
            anchor = "middle" if shape.angle else shape.anchor
            rotate = (f' transform="rotate({_n(-shape.angle)} {_n(shape.x)} {_n(h - shape.y)})"'
                      if shape.angle else "")
            weight = ' font-weight="bold"' if shape.bold else ""
            out.append(f'<text x="{_n(shape.x)}" y="{_n(h - shape.y)}" '
                       f'font-size="{_n(shape.size)}" fill="{shape.color}" '
                       f'text-anchor="{anchor}"{weight}{rotate}>{escape(shape.text)}</text>')
    out.append("</svg>")
    return "\n".join(out).encode("utf-8")
