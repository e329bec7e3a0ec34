"""The demo market: deterministic, realistic per kind, fast, and marked DEMO everywhere."""

from __future__ import annotations

import math
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import httpx
import pytest

from metric_stream.bootstrap import Services
from metric_stream.collectors.base import COLLECTORS, CollectionFailed, CollectRequest
from metric_stream.collectors.demo import (
    KINDS,
    DemoCollector,
    DemoMarket,
    demo_registry,
    kind_of,
    seed_history,
)
from metric_stream.models.config import RetryPolicy
from metric_stream.models.kpi import CollectorSource, KpiDefinition
from metric_stream.models.wire import KpiResult, MultiKpiResult
from metric_stream.services.ingest import ingest

END = date(2026, 11, 29)


def collector() -> DemoCollector:
    return DemoCollector(httpx.Client(), RetryPolicy(retries=0, delays_s=[]))


def entry(entries: list[KpiDefinition], entry_id: str) -> KpiDefinition:
    return next(e for e in entries if e.id == entry_id)


def test_values_do_not_depend_on_instance_or_call_order() -> None:
    days = [END - timedelta(days=n) for n in (0, 1, 63, 64, 65, 400, 3000)]
    forward = DemoMarket(seed=42)
    first = [forward.value("demo-btc-price-usd", "btc-price", d) for d in days]
    backward = DemoMarket(seed=42)
    second = [backward.value("demo-btc-price-usd", "btc-price", d) for d in reversed(days)]
    assert first == list(reversed(second))
    via_history = dict(DemoMarket(seed=42).history("demo-btc-price-usd", "btc-price", END, 3001))
    assert first == [via_history[datetime(d.year, d.month, d.day, tzinfo=UTC)] for d in days]
    # other KPIs asked first change nothing
    crowded = DemoMarket(seed=42)
    for i in range(20):
        crowded.history(f"other-{i}", "index", END, 100)
    assert crowded.value("demo-btc-price-usd", "btc-price", days[0]) == first[0]


def test_seeds_and_kpis_give_different_series() -> None:
    a = [v for _, v in DemoMarket(seed=1).history("k", "index", END, 60)]
    b = [v for _, v in DemoMarket(seed=2).history("k", "index", END, 60)]
    c = [v for _, v in DemoMarket(seed=1).history("k2", "index", END, 60)]
    assert a != b
    assert a != c


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_values_stay_in_each_kinds_range(kind: str) -> None:
    market = DemoMarket()
    for kpi_id in ("a", "b", "c"):
        spec = market.spec(kpi_id, kind)
        values = [v for _, v in market.history(kpi_id, kind, END, 2000)]
        assert all(math.isfinite(v) for v in values)
        assert spec.low <= min(values)
        assert max(values) <= spec.high
        # it moves, and uses a good part of its range over five years
        assert len(set(values)) > 20
        assert max(values) - min(values) > (spec.high - spec.low) * 0.02


def test_kind_ranges_are_the_realistic_ones() -> None:
    assert (KINDS["btc-price"].low, KINDS["btc-price"].high) == (30_000, 120_000)
    assert (KINDS["dominance"].low, KINDS["dominance"].high) == (40, 65)
    assert (KINDS["index"].low, KINDS["index"].high) == (0, 100)
    assert (KINDS["ratio"].low, KINDS["ratio"].high) == (0, 1)
    assert (KINDS["market-cap"].low, KINDS["market-cap"].high) == (1e12, 4e12)
    assert (KINDS["mvrv"].low, KINDS["mvrv"].high) == (0.5, 4)


def test_btc_moves_about_three_percent_a_day() -> None:
    values = [v for _, v in DemoMarket().history("demo-btc-price-usd", "btc-price", END, 2000)]
    changes = [abs(math.log(b / a)) for a, b in pairwise(values)]
    typical = statistics.median(changes) / 0.6745  # the median |change| of a normal is 0.67 sigma
    assert 0.01 < typical < 0.04


def test_fear_and_greed_reverts_to_the_middle() -> None:
    values = [v for _, v in DemoMarket().history("demo-fear-greed-index", "index", END, 1500)]
    assert all(v == int(v) for v in values)  # whole points, like the real index
    assert 35 < statistics.mean(values) < 65
    crossings = sum((a - 50) * (b - 50) < 0 for a, b in pairwise(values))
    assert crossings > 15


def test_history_is_daily_at_midnight_utc_ending_on_the_day() -> None:
    history = DemoMarket().history("x", "dominance", END, 365)
    assert len(history) == 365
    assert history[-1][0] == datetime(2026, 11, 29, tzinfo=UTC)
    assert history[0][0] == datetime(2025, 11, 30, tzinfo=UTC)
    steps = {b[0] - a[0] for a, b in pairwise(history)}
    assert steps == {timedelta(days=1)}
    assert all(moment.tzinfo is UTC for moment, _ in history)
    assert DemoMarket().history("x", "dominance", END, 0) == []
    with pytest.raises(ValueError, match="starts on"):
        DemoMarket().history("x", "dominance", date(2000, 1, 10), 30)
    with pytest.raises(ValueError, match="unknown demo kind"):
        DemoMarket().value("x", "weather", END)


def test_registry_yields_exactly_count_kpis_of_every_kind() -> None:
    entries = demo_registry(200)
    yielded = [k for e in entries for k in e.yields]
    assert len(yielded) == 200
    assert len(set(yielded)) == 200
    assert len({e.id for e in entries}) == len(entries)
    assert "demo-btc-price-usd" in yielded
    assert "demo-kpi-017-dominance" in yielded
    multis = [e for e in entries if e.kpi_ids]
    assert len(multis) >= 2
    assert {kind_of(e, k) for e in entries for k in e.yields} == set(KINDS)
    for e in entries:
        assert e.metadata["demo"] is True
        assert isinstance(e.source, CollectorSource)
        assert e.source.collector == "demo"
        assert "(demo)" in e.name
        assert e.unit or set(e.metadata["units"]) == set(e.kpi_ids)
    fear = entry(entries, "demo-fear-greed-index")
    assert (fear.analysis_config.high, fear.analysis_config.low) == (80, 20)
    cbbi = entry(entries, "demo-cbbi-multi")
    assert cbbi.thresholds_for("demo-cbbi-mvrv").high == 3.5
    small = demo_registry(5)
    assert sum(len(e.yields) for e in small) == 5
    assert demo_registry(0) == []


def test_two_hundred_kpis_of_a_year_generate_quickly() -> None:
    entries = demo_registry(200)
    market = DemoMarket()
    started = time.perf_counter()
    total = sum(len(market.history(k, kind_of(e, k), END, 365))
                for e in entries for k in e.yields)
    elapsed = time.perf_counter() - started
    assert total == 200 * 365
    assert elapsed < 2.0  # ~0.25 s on a 2-core machine; generous for a busy CI runner


def test_collector_is_registered_and_answers_for_the_requests_day() -> None:
    assert COLLECTORS["demo"] is DemoCollector
    entries = demo_registry(20)
    btc = entry(entries, "demo-btc-price-usd")
    moment = datetime(2026, 11, 29, 6, 0, 17, tzinfo=UTC)
    result = collector().collect(CollectRequest("trace_1", moment, btc))
    assert isinstance(result, KpiResult)
    assert result.kpi_id == "demo-btc-price-usd"
    assert result.timestamp == datetime(2026, 11, 29, tzinfo=UTC)
    assert result.metadata is not None
    assert result.metadata["demo"] is True
    assert result.values == {"demo-btc-price-usd": DemoMarket().value(
        "demo-btc-price-usd", "btc-price", END)}

    cmc = entry(entries, "demo-cmc-multi")
    late = datetime(2026, 11, 29, 23, 30, tzinfo=UTC)
    multi = collector().collect(CollectRequest("trace_1", late, cmc))
    assert isinstance(multi, MultiKpiResult)
    assert multi.kpi_ids == cmc.kpi_ids
    assert set(multi.values) == set(cmc.kpi_ids)
    assert multi.timestamp == datetime(2026, 11, 29, tzinfo=UTC)
    assert multi.metadata is not None
    assert multi.metadata["demo"] is True
    assert 40 <= multi.values["demo-btc-dominance"] <= 65


def test_collector_refuses_an_entry_without_a_demo_kind() -> None:
    bad = KpiDefinition(id="demo-x", name="x", kpi_type="x",
                        source=CollectorSource(collector="demo", params={"kind": "weather"}))
    with pytest.raises(CollectionFailed, match="no known demo kind"):
        collector().collect(CollectRequest("trace_1", datetime(2026, 1, 1, tzinfo=UTC), bad))


def test_seed_history_stores_demo_points_once(services: Services) -> None:
    entries = demo_registry(12)[:3]  # BTC, Fear & Greed, and the 4-KPI market overview
    yielded = [k for e in entries for k in e.yields]
    assert len(yielded) == 6
    assert seed_history(services, entries, 10, END) == 6 * 10
    assert seed_history(services, entries, 10, END) == 0
    points = services.timeseries.points("demo-btc-dominance")
    assert len(points) == 10
    assert points[-1].timestamp == datetime(2026, 11, 29, tzinfo=UTC)
    assert all(p.metadata == {"demo": True} and p.source == "demo" for p in points)
    assert [p.value for p in points] == [
        v for _, v in DemoMarket().history("demo-btc-dominance", "dominance", END, 10)]


@pytest.mark.parametrize("services", ["embedded"], indirect=True)
def test_collected_points_are_marked_demo_through_ingestion(services: Services) -> None:
    entries = demo_registry(6)
    cmc = entry(entries, "demo-cmc-multi")
    services.registry.kpis.create(cmc)
    moment = datetime(2026, 11, 29, 6, tzinfo=UTC)
    outcome = ingest(services, collector().collect(CollectRequest("trace_1", moment, cmc)),
                     source="demo")
    assert sorted(outcome.stored) == sorted(cmc.kpi_ids)
    for kpi_id in cmc.kpi_ids:
        point = services.timeseries.latest(kpi_id)
        assert point is not None
        assert point.metadata.get("demo") is True
