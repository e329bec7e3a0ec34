"""Built-in collectors. Importing the package registers each one in `COLLECTORS`."""

from metric_stream.collectors import binance, cbbi, coingecko, defillama, demo, feargreed
from metric_stream.collectors.base import COLLECTORS, CollectionFailed, Collector, CollectRequest

__all__ = ["COLLECTORS", "CollectRequest", "CollectionFailed", "Collector", "binance", "cbbi",
           "coingecko", "defillama", "demo", "feargreed"]
