"""The registry a fresh install starts with: about fifteen market KPIs from the
built-in collectors, so that the first `metric-stream run` has something to report.
`init` (and the first `run` on an empty registry) seeds them; the operator edits or
deactivates them like any other entry.
"""

from __future__ import annotations

from typing import Any

from metric_stream.bootstrap import Services
from metric_stream.errors import AlreadyExists
from metric_stream.models.kpi import (
    AnalysisConfig,
    ChartType,
    CollectorSource,
    KpiDefinition,
    Thresholds,
)


def _entry(entry_id: str, name: str, description: str, kpi_type: str, collector: str,
           params: dict[str, Any], *, unit: str = "", kpi_ids: list[str] | None = None,
           chart: ChartType = "line", high: float | None = None, low: float | None = None,
           indicators: dict[str, Thresholds] | None = None,
           units: dict[str, str] | None = None) -> KpiDefinition:
    metadata: dict[str, Any] = {"seededBy": "metric-stream defaults"}
    if units:
        metadata["units"] = units
    return KpiDefinition(
        id=entry_id, name=name, description=description, kpi_type=kpi_type, unit=unit,
        source=CollectorSource(collector=collector, params=params),
        kpi_ids=kpi_ids or [],
        analysis_config=AnalysisConfig(chart_type=chart, high=high, low=low,
                                       indicators=indicators or {}),
        metadata=metadata,
    )


def default_registry() -> list[KpiDefinition]:
    """Six entries yielding fifteen KPIs; ids are unique across entries."""
    return [
        _entry(
            "coingecko-prices", "Major coin prices (USD)",
            "Spot prices of Bitcoin, Ether and Solana in US dollars, from CoinGecko's "
            "/simple/price.",
            "price", "coingecko-price",
            {"coins": {"bitcoin": "btc-price-usd", "ethereum": "eth-price-usd",
                       "solana": "sol-price-usd"}, "vsCurrency": "usd"},
            unit="USD", kpi_ids=["btc-price-usd", "eth-price-usd", "sol-price-usd"]),
        _entry(
            "coingecko-global", "Crypto market overview",
            "Total crypto market cap, Bitcoin and Ether dominance (% of the total) and "
            "the 24 h change of the total market cap, from CoinGecko's /global.",
            "market", "coingecko-global",
            {"metrics": {"totalMarketCap.usd": "cg-total-market-cap-usd",
                         "dominance.btc": "cg-btc-dominance",
                         "dominance.eth": "cg-eth-dominance",
                         "marketCapChange24hPct": "cg-market-cap-change-24h"}},
            kpi_ids=["cg-total-market-cap-usd", "cg-btc-dominance", "cg-eth-dominance",
                     "cg-market-cap-change-24h"],
            units={"cg-total-market-cap-usd": "USD", "cg-btc-dominance": "%",
                   "cg-eth-dominance": "%", "cg-market-cap-change-24h": "%"},
            indicators={"cg-btc-dominance": Thresholds(high=65, low=40),
                        "cg-eth-dominance": Thresholds(high=25, low=10),
                        "cg-market-cap-change-24h": Thresholds(high=5, low=-5)}),
        _entry(
            "fear-greed-index", "Crypto Fear & Greed Index",
            "alternative.me's sentiment index, 0 (extreme fear) to 100 (extreme greed); "
            "the day's classification is kept with each value.",
            "sentiment", "alternative-me-fng", {},
            unit="index", high=75, low=25),
        _entry(
            "cbbi-multi", "CBBI and its on-chain indicators",
            "The CBBI bull-run index's confidence and some of the indicators it blends "
            "(MVRV, RHODL, Puell; each scaled 0 to 1), with the Bitcoin price it uses.",
            "onchain", "cbbi-multi",
            {"indicators": {"Price": "cbbi-btc-price-usd", "Confidence": "cbbi-confidence",
                            "MVRV": "cbbi-mvrv", "RHODL": "cbbi-rhodl",
                            "Puell": "cbbi-puell"}},
            kpi_ids=["cbbi-btc-price-usd", "cbbi-confidence", "cbbi-mvrv", "cbbi-rhodl",
                     "cbbi-puell"],
            units={"cbbi-btc-price-usd": "USD", "cbbi-confidence": "0-1", "cbbi-mvrv": "0-1",
                   "cbbi-rhodl": "0-1", "cbbi-puell": "0-1"},
            indicators={"cbbi-confidence": Thresholds(high=0.8, low=0.2),
                        "cbbi-mvrv": Thresholds(high=0.9, low=0.1),
                        "cbbi-rhodl": Thresholds(high=0.9, low=0.1),
                        "cbbi-puell": Thresholds(high=0.9, low=0.1)}),
        _entry(
            "defillama-stablecoin-mcap-usd", "Stablecoin market cap",
            "Total market cap of all stablecoins (every peg, in USD), from DefiLlama.",
            "market", "defillama-stablecoins", {}, unit="USD"),
        _entry(
            "binance-btcusdt-change-24h", "BTC/USDT 24 h change (Binance)",
            "Change of BTC/USDT over the last 24 h on Binance. Binance refuses requests "
            "from some regions (HTTP 451, e.g. the US): there, point params.baseUrl at a "
            "reachable mirror or deactivate this KPI.",
            "price", "binance-ticker",
            {"symbol": "BTCUSDT", "field": "priceChangePercent"},
            unit="%", chart="bar", high=5, low=-5),
    ]


def seed_defaults(services: Services) -> list[str]:
    """Add the default entries the registry does not have yet; the ids added."""
    now = services.clock.now()
    added = []
    for definition in default_registry():
        try:
            services.registry.kpis.create(definition.stamped(now))
        except AlreadyExists:
            continue
        added.append(definition.id)
    return added
