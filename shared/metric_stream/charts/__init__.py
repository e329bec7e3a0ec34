"""Charts of KPI series (matplotlib is loaded only when a chart is drawn)."""

from metric_stream.charts.render import (
    Candle,
    ChartFormat,
    ChartSpec,
    Point,
    chart_for_entry,
    chart_for_kpi,
    fallback_chart,
    format_ticks,
    format_value,
    moving_average,
    ohlc_from_points,
    render_chart,
)

__all__ = [
    "Candle",
    "ChartFormat",
    "ChartSpec",
    "Point",
    "chart_for_entry",
    "chart_for_kpi",
    "fallback_chart",
    "format_ticks",
    "format_value",
    "moving_average",
    "ohlc_from_points",
    "render_chart",
]
