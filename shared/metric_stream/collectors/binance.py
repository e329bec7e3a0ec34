"""Binance's public 24 h ticker (`/api/v3/ticker/24hr`), no key needed.

Binance answers HTTP 451 to requests from restricted regions (the US among them):
such a KPI fails at once, with a message saying so, instead of being retried; point
`params.baseUrl` at a mirror reachable from the server's region, or deactivate it.
Numbers arrive as text; the window's `closeTime` (ms) is the point's time.
"""

from __future__ import annotations

from typing import Any

from metric_stream.collectors.base import (
    CollectRequest,
    member,
    number,
    params_of,
    register,
    unix_time,
)
from metric_stream.collectors.http import JsonCollector
from metric_stream.models.wire import KpiResult, MultiKpiResult

FIELDS = ("lastPrice", "priceChange", "priceChangePercent", "weightedAvgPrice", "openPrice",
          "highPrice", "lowPrice", "volume", "quoteVolume", "count")


@register
class BinanceTicker(JsonCollector):
    """`params`: `symbol` (default BTCUSDT); `fields` ({field: kpiId}, or fields in the
    order of the entry's KPI ids) or `field` for a single KPI, among `FIELDS`."""

    name = "binance-ticker"
    default_base_url = "https://api.binance.com"

    def collect(self, request: CollectRequest) -> KpiResult | MultiKpiResult:
        fields = self.targets(request, "fields", "field")
        unknown = sorted(set(fields) - set(FIELDS))
        if unknown:
            raise self.bad_params(f"unknown ticker field(s) {unknown}; use {list(FIELDS)}")
        symbol = str(params_of(request).get("symbol", "BTCUSDT")).upper()

        def read(answer: Any, url: str) -> KpiResult | MultiKpiResult:
            values: dict[str, float | dict[str, Any]] = {
                kpi_id: number(member(answer, field, "the ticker"), field)
                for field, kpi_id in fields.items()}
            stamp = unix_time(member(answer, "closeTime", "the ticker"), "closeTime",
                              millis=True)
            return self.result(request, values, stamp, sourceUrl=url, symbol=symbol)

        return self.get_json(request, "/api/v3/ticker/24hr", read, params={"symbol": symbol})
