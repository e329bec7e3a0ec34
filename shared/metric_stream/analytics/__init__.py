"""Deterministic analytics of KPI time series (SPEC step 4 "Analyse"), pure Python."""

from metric_stream.analytics.cross import (
    Correlation,
    Mover,
    correlations,
    daily_values,
    top_movers,
)
from metric_stream.analytics.series import (
    Alert,
    Change,
    Crossing,
    Gap,
    SeriesAnalytics,
    Trend,
    Volatility,
    analyse_series,
)

__all__ = [
    "Alert",
    "Change",
    "Correlation",
    "Crossing",
    "Gap",
    "Mover",
    "SeriesAnalytics",
    "Trend",
    "Volatility",
    "analyse_series",
    "correlations",
    "daily_values",
    "top_movers",
]
