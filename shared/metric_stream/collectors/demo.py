"""The demo market: a deterministic simulator, so that a machine without network access
(a laptop, CI, a first try) still sees a whole cycle with believable data.

Every value is a pure function of (seed, KPI id, kind, day), whatever the order of
the calls: each KPI follows its own Ornstein-Uhlenbeck process (mean-reverting, with
a time scale per kind), drawn at block boundaries from a per-KPI generator and filled
in between by an exact OU bridge from a per-block generator, then mapped smoothly
into the kind's range. A day therefore costs one block, never a walk from the epoch.
Everything produced here is marked DEMO (`metadata.demo = true`).
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from metric_stream.collectors.base import Collector, CollectRequest, params_of, register
from metric_stream.models.kpi import (
    AnalysisConfig,
    CollectorSource,
    KpiDefinition,
    Thresholds,
)
from metric_stream.models.timeseries import DataPoint
from metric_stream.models.wire import KpiResult, MultiKpiResult

if TYPE_CHECKING:
    from metric_stream.bootstrap import Services

EPOCH = date(2000, 1, 1)  # the simulated market begins here
BLOCK = 64  # days per bridged block
DEMO_METADATA: dict[str, Any] = {"demo": True}


@dataclass(frozen=True)
class KindSpec:
    """A kind of series: its range, daily volatility near the middle of the range
    (a fraction for log-scaled kinds, units otherwise) and mean-reversion time."""

    low: float
    high: float
    daily_vol: float
    tau_days: float
    log: bool = False
    decimals: int | None = None  # None: 6 significant digits
    unit: str = ""


KINDS: dict[str, KindSpec] = {
    "btc-price": KindSpec(30_000, 120_000, 0.03, 365, log=True, unit="USD"),
    "alt-price": KindSpec(0.05, 6_000, 0.045, 240, log=True, unit="USD"),
    "dominance": KindSpec(40, 65, 0.35, 180, decimals=2, unit="%"),
    "index": KindSpec(0, 100, 6, 15, decimals=0, unit="index"),
    "ratio": KindSpec(0, 1, 0.025, 60, decimals=4, unit="ratio"),
    "market-cap": KindSpec(1e12, 4e12, 0.025, 365, log=True, unit="USD"),
    "mvrv": KindSpec(0.5, 4, 0.025, 240, log=True, decimals=4, unit="ratio"),
    "funding-rate": KindSpec(-0.05, 0.1, 0.01, 10, decimals=4, unit="%"),
}


def _seed_of(*parts: object) -> int:
    text = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


@dataclass(frozen=True)
class _Process:
    """A kind's OU process and the map from its latent value to the kind's range."""

    a: float  # one-day autocorrelation
    s: float  # one-day innovation scale
    block_a: float
    block_s: float
    bridge: tuple[float, ...]  # weight of the endpoint miss at each day of a block
    centre: float
    half: float
    gain: float
    log: bool
    decimals: int | None

    @classmethod
    def of(cls, spec: KindSpec) -> _Process:
        a = math.exp(-1 / spec.tau_days)
        s = math.sqrt(1 - a * a)
        low, high = (math.log(spec.low), math.log(spec.high)) if spec.log else (spec.low,
                                                                                spec.high)
        half = (high - low) / 2
        block_a = a ** BLOCK
        bridge = tuple(a ** (BLOCK - i) * (1 - a ** (2 * i)) / (1 - a ** (2 * BLOCK))
                       for i in range(BLOCK + 1))
        return cls(a=a, s=s, block_a=block_a, block_s=math.sqrt(1 - block_a * block_a),
                   bridge=bridge, centre=low + half, half=half,
                   gain=spec.daily_vol / (half * s), log=spec.log, decimals=spec.decimals)

    def value(self, latent: float) -> float:
        v = self.centre + self.half * math.tanh(self.gain * latent)
        if self.log:
            v = math.exp(v)
        v = round(v, self.decimals) if self.decimals is not None else float(f"{v:.6g}")
        return v + 0.0  # never -0.0


def _alt_spec(seed: int, kpi_id: str) -> KindSpec:
    """An altcoin's own price range: from a third to three times a level between $0.15
    and $2,000 (so within the kind's envelope, $0.05 to $6,000)."""
    level = math.exp(random.Random(_seed_of(seed, kpi_id, "level")).uniform(
        math.log(0.15), math.log(2_000)))
    base = KINDS["alt-price"]
    return KindSpec(level / 3, level * 3, base.daily_vol, base.tau_days, log=True, unit="USD")


class DemoMarket:
    """Deterministic simulated values; instances with the same seed agree everywhere."""

    def __init__(self, seed: int = 42) -> None:
        self.seed = seed
        self._processes: dict[tuple[str, str], _Process] = {}
        self._coarse: dict[tuple[str, str], tuple[random.Random, list[float]]] = {}
        self._blocks: dict[tuple[str, str, int], list[float]] = {}
        self._lock = threading.Lock()  # the per-KPI generators must advance in one order

    def spec(self, kpi_id: str, kind: str) -> KindSpec:
        if kind == "alt-price":
            return _alt_spec(self.seed, kpi_id)
        try:
            return KINDS[kind]
        except KeyError:
            raise ValueError(f"unknown demo kind {kind!r}; kinds: {sorted(KINDS)}") from None

    def value(self, kpi_id: str, kind: str, day: date) -> float:
        index = self._day_index(day)
        return self._block(kpi_id, kind, index // BLOCK)[index % BLOCK]

    def history(self, kpi_id: str, kind: str, end: date, days: int) -> list[tuple[datetime, float]]:
        """`days` daily points at 00:00 UTC, oldest first, the last one on `end`."""
        if days < 0:
            raise ValueError("days must be 0 or more")
        if days == 0:
            return []
        first = end - timedelta(days=days - 1)
        start, stop = self._day_index(first), self._day_index(end) + 1
        values: list[float] = []
        for block in range(start // BLOCK, (stop - 1) // BLOCK + 1):
            values += self._block(kpi_id, kind, block)
        offset = start - (start // BLOCK) * BLOCK
        origin = datetime(first.year, first.month, first.day, tzinfo=UTC)
        return [(origin + timedelta(days=i), v)
                for i, v in enumerate(values[offset:offset + days])]

    @staticmethod
    def _day_index(day: date) -> int:
        index = day.toordinal() - EPOCH.toordinal()
        if index < 0:
            raise ValueError(f"the demo market starts on {EPOCH.isoformat()}")
        return index

    def _process(self, kpi_id: str, kind: str) -> _Process:
        key = (kpi_id, kind)
        process = self._processes.get(key)
        if process is None:
            process = self._processes[key] = _Process.of(self.spec(kpi_id, kind))
        return process

    def _boundaries(self, kpi_id: str, kind: str, block: int) -> tuple[float, float]:
        """The latent value at the start of `block` and of the next one."""
        process = self._process(kpi_id, kind)
        key = (kpi_id, kind)
        if key not in self._coarse:
            rng = random.Random(_seed_of(self.seed, kpi_id, kind, "coarse"))
            self._coarse[key] = (rng, [rng.gauss(0, 1)])
        rng, xs = self._coarse[key]
        while len(xs) < block + 2:
            xs.append(process.block_a * xs[-1] + process.block_s * rng.gauss(0, 1))
        return xs[block], xs[block + 1]

    def _block(self, kpi_id: str, kind: str, block: int) -> list[float]:
        key = (kpi_id, kind, block)
        cached = self._blocks.get(key)
        if cached is not None:
            return cached
        with self._lock:
            return self._blocks.get(key) or self._draw_block(kpi_id, kind, block)

    def _draw_block(self, kpi_id: str, kind: str, block: int) -> list[float]:
        process = self._process(kpi_id, kind)
        start, end = self._boundaries(kpi_id, kind, block)
        gauss = random.Random(_seed_of(self.seed, kpi_id, kind, block)).gauss
        a, s, bridge = process.a, process.s, process.bridge
        free = [start]
        y = start
        for _ in range(BLOCK):
            y = a * y + s * gauss(0, 1)
            free.append(y)
        miss = end - y
        values = [process.value(free[i] + bridge[i] * miss) for i in range(BLOCK)]
        self._blocks[(kpi_id, kind, block)] = values
        return values


# ---------------------------------------------------------------- the demo registry
def _source(kind: str, **params: Any) -> CollectorSource:
    return CollectorSource(collector="demo", params={"kind": kind, **params})


def _single(kpi_id: str, name: str, kind: str, *, high: float | None = None,
            low: float | None = None) -> KpiDefinition:
    return KpiDefinition(
        id=kpi_id, name=f"{name} (demo)", kpi_type=kind, source=_source(kind),
        unit=KINDS[kind].unit, analysis_config=AnalysisConfig(high=high, low=low),
        description="Simulated by the built-in demo market; not real market data.",
        metadata=dict(DEMO_METADATA))


def _multi(entry_id: str, name: str, kinds: dict[str, str],
           indicators: dict[str, Thresholds]) -> KpiDefinition:
    units = {kpi_id: KINDS[kind].unit for kpi_id, kind in kinds.items()}
    shared_unit = next(iter(set(units.values()))) if len(set(units.values())) == 1 else ""
    return KpiDefinition(
        id=entry_id, name=f"{name} (demo)", kpi_type=entry_id.removeprefix("demo-"),
        source=_source("multi", kinds=kinds), kpi_ids=list(kinds), unit=shared_unit,
        analysis_config=AnalysisConfig(indicators=indicators),
        description="Several KPIs from one simulated source; not real market data.",
        metadata={**DEMO_METADATA, "units": units})


def _named_entries() -> list[KpiDefinition]:
    return [
        _single("demo-btc-price-usd", "BTC price", "btc-price", high=110_000, low=35_000),
        _single("demo-fear-greed-index", "Fear & Greed index", "index", high=80, low=20),
        _multi("demo-cmc-multi", "Market overview", {
            "demo-btc-dominance": "dominance",
            "demo-eth-dominance": "dominance",
            "demo-totalmarketcap-usd": "market-cap",
            "demo-stablecoinmarketcap-usd": "market-cap",
        }, {}),
        _single("demo-eth-price-usd", "ETH price", "alt-price"),
        _multi("demo-cbbi-multi", "CBBI", {
            "demo-cbbi-confidence": "ratio",
            "demo-cbbi-mvrv": "mvrv",
            "demo-cbbi-rhodl": "ratio",
        }, {"demo-cbbi-confidence": Thresholds(high=0.9, low=0.1),
            "demo-cbbi-mvrv": Thresholds(high=3.5, low=0.8)}),
        _single("demo-btc-funding-rate", "BTC funding rate", "funding-rate", high=0.08,
                low=-0.03),
    ]


_FILLER_KINDS = ("alt-price", "dominance", "index", "ratio", "market-cap", "mvrv",
                 "funding-rate", "alt-price")
_FILLER_THRESHOLDS: dict[str, tuple[float | None, float | None]] = {
    "index": (80, 20), "ratio": (0.9, 0.1), "mvrv": (3.5, 0.8)}


def demo_registry(count: int) -> list[KpiDefinition]:
    """Registry entries yielding exactly `count` KPI ids: the named demo KPIs (BTC
    price, Fear & Greed, two multi-KPI sources, ...) while they fit, then numbered
    ones (`demo-kpi-017-index`) of every kind."""
    if count < 0:
        raise ValueError("count must be 0 or more")
    entries: list[KpiDefinition] = []
    total = 0
    for entry in _named_entries():
        if total + len(entry.yields) <= count:
            entries.append(entry)
            total += len(entry.yields)
    width = max(3, len(str(count)))
    while total < count:
        total += 1
        kind = _FILLER_KINDS[total % len(_FILLER_KINDS)]
        high, low = _FILLER_THRESHOLDS.get(kind, (None, None))
        entries.append(_single(f"demo-kpi-{total:0{width}d}-{kind}",
                               f"Demo KPI {total} ({kind})", kind, high=high, low=low))
    return entries


def kind_of(entry: KpiDefinition, kpi_id: str) -> str:
    """The demo kind of one KPI id yielded by a demo registry entry."""
    source = entry.source
    if not isinstance(source, CollectorSource) or source.collector != "demo":
        raise ValueError(f"{entry.id!r} is not a demo source")
    if entry.kpi_ids:
        kinds = source.params.get("kinds")
        kind = kinds.get(kpi_id) if isinstance(kinds, dict) else None
    else:
        kind = source.params.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise ValueError(f"{entry.id!r} gives no known demo kind for {kpi_id!r} "
                         f"(source.params.kind{'s' if entry.kpi_ids else ''}; "
                         f"kinds: {sorted(KINDS)})")
    return kind


def seed_history(services: Services, kpis: Sequence[KpiDefinition], days: int, end: date,
                 *, market: DemoMarket | None = None) -> int:
    """Store `days` daily demo points up to `end` for every KPI the entries yield;
    returns how many were new (a re-run stores none)."""
    market = market or DemoMarket()
    points: list[DataPoint] = []
    for entry in kpis:
        for kpi_id in entry.yields:
            kind = kind_of(entry, kpi_id)
            # values and timestamps come out valid by construction: skip re-validation
            points += [DataPoint.model_construct(kpi_id=kpi_id, timestamp=moment, value=value,
                                                 metadata=dict(DEMO_METADATA), source="demo",
                                                 trace_id=None)
                       for moment, value in market.history(kpi_id, kind, end, days)]
    return services.timeseries.append_many(points).stored if points else 0


@register
class DemoCollector(Collector):
    """The `demo` collector: the demo market's value for the job's day (00:00 UTC)."""

    name = "demo"
    _markets: ClassVar[dict[int, DemoMarket]] = {}

    def collect(self, request: CollectRequest) -> KpiResult | MultiKpiResult:
        kpi = request.kpi
        seed = params_of(request).get("seed", 42)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise self.bad_params("params.seed must be an integer")
        market = self._markets.get(seed) or self._markets.setdefault(seed, DemoMarket(seed))
        day = request.timestamp.astimezone(UTC).date()
        try:
            values = {k: market.value(k, kind_of(kpi, k), day) for k in kpi.yields}
        except ValueError as exc:
            raise self.bad_params(str(exc)) from None
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return self.result(request, values, midnight, **DEMO_METADATA)
