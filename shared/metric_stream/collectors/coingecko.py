"""CoinGecko: coin prices (`/simple/price`) and the market as a whole (`/global`).

The public API needs no key; a demo key (or a Pro key, with a `pro-api.` base URL)
raises the rate limit. It comes from `api_key` or `$METRIC_STREAM_COINGECKO_API_KEY`,
is sent as a header and never shown in messages, logs or stored metadata.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

import httpx

from metric_stream.collectors.base import (
    CollectRequest,
    MalformedAnswer,
    member,
    number,
    params_of,
    register,
    unix_time,
)
from metric_stream.collectors.http import JsonCollector
from metric_stream.models.config import RetryPolicy
from metric_stream.models.wire import KpiResult, MultiKpiResult

API_KEY_ENV = "METRIC_STREAM_COINGECKO_API_KEY"

# `/global` metrics a KPI can name: keyed ones take a currency or coin symbol after a dot.
_KEYED_METRICS = {"totalMarketCap": "total_market_cap", "totalVolume": "total_volume",
                  "dominance": "market_cap_percentage"}
_PLAIN_METRICS = {"marketCapChange24hPct": "market_cap_change_percentage_24h_usd",
                  "activeCryptocurrencies": "active_cryptocurrencies", "markets": "markets"}


class _CoinGecko(JsonCollector):
    default_base_url = "https://api.coingecko.com/api/v3"

    def __init__(self, http: httpx.Client, retry: RetryPolicy, base_url: str | None = None,
                 *, api_key: str | None = None, **options: Any) -> None:
        super().__init__(http, retry, base_url, **options)
        self._api_key = api_key

    def headers(self, request: CollectRequest) -> dict[str, str]:
        key = self._api_key or os.environ.get(API_KEY_ENV, "").strip()
        if not key:
            return {}
        pro = "pro-api." in self.base_url_for(request)
        return {"x-cg-pro-api-key" if pro else "x-cg-demo-api-key": key}


@register
class CoinGeckoPrice(_CoinGecko):
    """`params`: `coins` ({coinId: kpiId}, or coin ids in the order of the entry's
    KPI ids) or `coin` for a single KPI; `vsCurrency` (default `usd`)."""

    name = "coingecko-price"

    def collect(self, request: CollectRequest) -> KpiResult | MultiKpiResult:
        coins = self.targets(request, "coins", "coin")
        currency = str(params_of(request).get("vsCurrency", "usd")).lower()

        def read(answer: Any, url: str) -> KpiResult | MultiKpiResult:
            values: dict[str, float | dict[str, Any]] = {}
            updated: list[datetime] = []
            if not isinstance(answer, dict):
                raise MalformedAnswer("the answer is not an object")
            for coin, kpi_id in coins.items():
                quote = answer.get(coin)
                if not isinstance(quote, dict) or currency not in quote:
                    raise MalformedAnswer(f"the answer has no {currency} price for {coin!r} "
                                          "(is the coin id right?)")
                data: dict[str, Any] = {
                    "value": number(quote[currency], f"{coin}.{currency}"),
                    "coin": coin, "vsCurrency": currency}
                change = quote.get(f"{currency}_24h_change")
                if change is not None:
                    data["change24hPct"] = number(change, f"{coin}.{currency}_24h_change")
                if quote.get("last_updated_at") is not None:
                    updated.append(unix_time(quote["last_updated_at"],
                                             f"{coin}.last_updated_at"))
                values[kpi_id] = data
            stamp = max(updated) if len(updated) == len(coins) else request.timestamp
            return self.result(request, values, stamp, sourceUrl=url)

        return self.get_json(request, "/simple/price", read, headers=self.headers(request),
                             params={"ids": ",".join(coins), "vs_currencies": currency,
                                     "include_24hr_change": "true",
                                     "include_last_updated_at": "true"})


@register
class CoinGeckoGlobal(_CoinGecko):
    """`params`: `metrics` ({metric: kpiId}, or names in the order of the entry's KPI
    ids) or `metric` for a single KPI. Metrics: `totalMarketCap.usd`,
    `totalVolume.usd`, `dominance.btc` (any currency or coin symbol after the dot),
    `marketCapChange24hPct`, `activeCryptocurrencies`, `markets`."""

    name = "coingecko-global"

    def collect(self, request: CollectRequest) -> KpiResult | MultiKpiResult:
        metrics = self.targets(request, "metrics", "metric")
        paths = {metric: self._path(metric) for metric in metrics}

        def read(answer: Any, url: str) -> KpiResult | MultiKpiResult:
            data = member(answer, "data", "the answer")
            values: dict[str, float | dict[str, Any]] = {}
            for metric, kpi_id in metrics.items():
                node, where = data, "data"
                for key in paths[metric]:
                    node, where = member(node, key, where), f"{where}.{key}"
                values[kpi_id] = number(node, where)
            updated = data.get("updated_at")
            stamp = (unix_time(updated, "data.updated_at") if updated is not None
                     else request.timestamp)
            return self.result(request, values, stamp, sourceUrl=url)

        return self.get_json(request, "/global", read, headers=self.headers(request))

    def _path(self, metric: str) -> tuple[str, ...]:
        head, _, key = metric.partition(".")
        if head in _KEYED_METRICS and key:
            return _KEYED_METRICS[head], key.lower()
        if metric in _PLAIN_METRICS:
            return (_PLAIN_METRICS[metric],)
        raise self.bad_params(
            f"unknown /global metric {metric!r}; use totalMarketCap.usd, totalVolume.usd, "
            "dominance.btc, marketCapChange24hPct, activeCryptocurrencies or markets")
