"""Each built-in collector against recorded answers of its real API, through the real
`collect_kpi` into the store: values, timestamps, metadata, and the job's record of
every success and failure. Runs on the embedded backend and on AWS under moto."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any, cast

import httpx
import pytest

from metric_stream.bootstrap import Services
from metric_stream.clock import ManualClock
from metric_stream.collectors import COLLECTORS, CollectionFailed, CollectRequest
from metric_stream.collectors.coingecko import CoinGeckoPrice
from metric_stream.models.config import RetryConfig
from metric_stream.models.job import Job, KpiStatus
from metric_stream.models.kpi import CollectorSource, KpiDefinition
from metric_stream.ports import RecordStore
from metric_stream.services.collect import collect_all, collect_kpi
from metric_stream.services.ingest import ErrorOutcome, IngestOutcome
from tests.collectors.conftest import RecordedApi, Reply, SleepLog, recorded

TRACE = "trace_20261129_060000_c011ec"


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def entry(collector: str, params: dict[str, Any], kpi_id: str,
          kpi_ids: list[str] | None = None, base_url: str | None = None) -> KpiDefinition:
    if base_url is not None:
        params = {**params, "baseUrl": base_url}
    return KpiDefinition(id=kpi_id, name=kpi_id, kpi_type="market", kpi_ids=kpi_ids or [],
                         source=CollectorSource(collector=collector, params=params))


def prepare(services: Services, *entries: KpiDefinition, trace_id: str = TRACE) -> None:
    now = services.clock.now()
    for kpi in entries:
        if services.registry.kpis.get(kpi.id) is None:
            services.registry.kpis.create(kpi.stamped(now))
    services.jobs.create(Job(trace_id=trace_id, created_at=now,
                             kpi_ids=[k for kpi in entries for k in kpi.yields]))


def collect(services: Services, http: httpx.Client, sleeps: SleepLog, kpi: KpiDefinition,
            trace_id: str = TRACE) -> IngestOutcome | ErrorOutcome:
    request = CollectRequest(trace_id=trace_id, timestamp=services.clock.now(), kpi=kpi)
    return collect_kpi(services, request, http, sleep=sleeps)


def failure_of(services: Services, kpi_id: str) -> dict[str, Any]:
    state = services.jobs.require(TRACE).state_of(kpi_id)
    assert state.status is KpiStatus.FAILED
    assert state.error is not None
    return state.error


class SerialisedRecords:
    """moto's in-process DynamoDB is not thread-safe for transactions (it deep-copies a
    table while other threads write to it); real DynamoDB is. Under moto, storage calls
    take turns; the collectors' fetches still run side by side."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._lock = threading.RLock()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attr(*args, **kwargs)
        return call


def thread_safe(services: Services) -> Services:
    if services.settings.backend != "aws":
        return services
    return Services(settings=services.settings, clock=services.clock, blobs=services.blobs,
                    queue=services.queue,
                    records=cast(RecordStore, SerialisedRecords(services.records)))


def stablecoin_total() -> float:
    last = json.loads(recorded("defillama_stablecoincharts_all.json"))[-1]
    return float(sum(last["totalCirculatingUSD"].values()))


PRICE_META = {"coin": "bitcoin", "vsCurrency": "usd", "change24hPct": 1.8723401627218047}

# collector, params, entry id, kpiIds, {kpiId: (value, timestamp, point metadata)}
CASES: dict[str, tuple[str, dict[str, Any], str, list[str], dict[str, tuple[Any, ...]]]] = {
    "coingecko-price-multi": (
        "coingecko-price",
        {"coins": {"bitcoin": "btc-price-usd", "ethereum": "eth-price-usd",
                   "solana": "sol-price-usd"}, "vsCurrency": "USD"},
        "coingecko-prices", ["btc-price-usd", "eth-price-usd", "sol-price-usd"],
        {"btc-price-usd": (97312.0, at(1732860071), PRICE_META),
         "eth-price-usd": (3584.13, at(1732860071), None),
         "sol-price-usd": (240.82, at(1732860071), None)}),
    "coingecko-price-single": (
        "coingecko-price", {"coins": ["bitcoin"]}, "btc-price-usd", [],
        {"btc-price-usd": (97312.0, at(1732860065), PRICE_META)}),
    "coingecko-global": (
        "coingecko-global",
        {"metrics": ["totalMarketCap.usd", "dominance.BTC", "dominance.eth",
                     "marketCapChange24hPct"]},
        "coingecko-global", ["cg-total-market-cap-usd", "cg-btc-dominance",
                             "cg-eth-dominance", "cg-market-cap-change-24h"],
        {"cg-total-market-cap-usd": (3419925362542.8325, at(1732860123), {}),
         "cg-btc-dominance": (56.33711019417307, at(1732860123), {}),
         "cg-eth-dominance": (12.621428773563924, at(1732860123), {}),
         "cg-market-cap-change-24h": (1.7167409328624307, at(1732860123), {})}),
    "fear-and-greed": (
        "alternative-me-fng", {}, "fear-greed-index", [],
        {"fear-greed-index": (80.0, at(1732838400), {"classification": "Extreme Greed"})}),
    "cbbi-latest-common-day": (
        "cbbi-multi",
        {"indicators": {"Price": "cbbi-btc-price-usd", "Confidence": "cbbi-confidence",
                        "MVRV": "cbbi-mvrv", "RHODL": "cbbi-rhodl", "Puell": "cbbi-puell"}},
        "cbbi-multi", ["cbbi-btc-price-usd", "cbbi-confidence", "cbbi-mvrv", "cbbi-rhodl",
                       "cbbi-puell"],
        {"cbbi-btc-price-usd": (95962.5307, at(1732752000), {}),
         "cbbi-confidence": (0.7702, at(1732752000), {}),
         "cbbi-mvrv": (0.7617, at(1732752000), {}),
         "cbbi-rhodl": (0.8287, at(1732752000), {}),
         "cbbi-puell": (0.6102, at(1732752000), {})}),
    "defillama-all-pegs": (
        "defillama-stablecoins", {}, "defillama-stablecoin-mcap-usd", [],
        {"defillama-stablecoin-mcap-usd": (stablecoin_total(), at(1732838400),
                                           {"peg": "all"})}),
    "binance-ticker": (
        "binance-ticker", {"fields": {"lastPrice": "binance-btc", "priceChangePercent":
                                      "binance-btc-change-24h"}},
        "binance-btcusdt", ["binance-btc", "binance-btc-change-24h"],
        {"binance-btc": (97248.02, at(1732860064.031), {}),
         "binance-btc-change-24h": (1.861, at(1732860064.031), {})}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_collector_stores_the_sources_values_with_its_timestamps(
        case: str, services: Services, api: RecordedApi, http: httpx.Client,
        sleeps: SleepLog) -> None:
    collector, params, entry_id, kpi_ids, expected = CASES[case]
    kpi = entry(collector, params, entry_id, kpi_ids, api.base_url(collector))
    prepare(services, kpi)

    outcome = collect(services, http, sleeps, kpi)

    assert isinstance(outcome, IngestOutcome)
    assert sorted(outcome.stored) == sorted(expected)
    job = services.jobs.require(TRACE)
    for kpi_id, (value, timestamp, metadata) in expected.items():
        [point] = services.timeseries.points(kpi_id)
        assert point.value == pytest.approx(value, rel=1e-12)
        assert point.timestamp == timestamp
        if metadata is not None:
            assert point.metadata == metadata
        assert (point.source, point.trace_id) == (f"collector:{collector}", TRACE)
        assert job.state_of(kpi_id).status is KpiStatus.COLLECTED
        package = services.packages.get(TRACE, kpi_id)
        assert package is not None
        assert package.value == point.value
        assert package.metadata["collector"] == collector
        assert str(package.metadata["sourceUrl"]).startswith(api.url)
    assert sleeps.waits == []


def test_the_requests_ask_the_source_for_what_the_entry_needs(
        api: RecordedApi, http: httpx.Client, sleeps: SleepLog) -> None:
    for case in ("coingecko-price-multi", "binance-ticker", "fear-and-greed"):
        collector, params, entry_id, kpi_ids, _ = CASES[case]
        kpi = entry(collector, params, entry_id, kpi_ids, api.base_url(collector))
        COLLECTORS[collector](http, RetryConfig().collection, sleep=sleeps).collect(
            CollectRequest(TRACE, datetime.now(UTC), kpi))
    [price] = api.requests("/api/v3/simple/price")
    [ticker] = api.requests("/api/v3/ticker/24hr")
    [fng] = api.requests("/fng/")
    assert price.query == {"ids": "bitcoin,ethereum,solana", "vs_currencies": "usd",
                           "include_24hr_change": "true", "include_last_updated_at": "true"}
    assert ticker.query == {"symbol": "BTCUSDT"}
    assert fng.query["limit"] == "1"
    assert price.headers["user-agent"].startswith("metric-stream/")
    assert "x-cg-demo-api-key" not in price.headers


def test_two_runs_the_same_day_make_one_point(
        services: Services, api: RecordedApi, http: httpx.Client, sleeps: SleepLog,
        clock: ManualClock) -> None:
    kpi = entry("alternative-me-fng", {}, "fear-greed-index",
                base_url=api.base_url("alternative-me-fng"))
    prepare(services, kpi)
    prepare(services, kpi, trace_id="trace_20261129_120000_c011ec")
    first = collect(services, http, sleeps, kpi)
    clock.advance(6 * 3600)
    second = collect(services, http, sleeps, kpi, trace_id="trace_20261129_120000_c011ec")
    assert isinstance(first, IngestOutcome) and isinstance(second, IngestOutcome)
    assert (first.stored, second.duplicates) == (["fear-greed-index"], ["fear-greed-index"])
    assert len(services.timeseries.points("fear-greed-index")) == 1
    assert second.job.settled == ["fear-greed-index"]


def test_server_errors_then_success_are_retried_with_the_policys_backoff(
        services: Services, api: RecordedApi, http: httpx.Client, sleeps: SleepLog) -> None:
    kpi = entry("coingecko-global", {"metric": "dominance.btc"}, "cg-btc-dominance",
                base_url=api.base_url("coingecko-global"))
    prepare(services, kpi)
    api.answer("/api/v3/global", Reply(503), Reply(drop=True))
    outcome = collect(services, http, sleeps, kpi)
    assert isinstance(outcome, IngestOutcome)
    assert outcome.stored == ["cg-btc-dominance"]
    assert sleeps.waits == [1, 2]
    assert len(api.requests("/api/v3/global")) == 3


def test_a_429_is_retried_after_its_retry_after(
        services: Services, api: RecordedApi, http: httpx.Client, sleeps: SleepLog) -> None:
    kpi = entry("coingecko-price", {"coin": "bitcoin"}, "btc-price-usd",
                base_url=api.base_url("coingecko-price"))
    prepare(services, kpi)
    api.answer("/api/v3/simple/price",
               Reply(429, recorded("coingecko_429.json"), {"Retry-After": "1"}))
    outcome = collect(services, http, sleeps, kpi)
    assert isinstance(outcome, IngestOutcome)
    assert sleeps.waits == [pytest.approx(1.0)]
    assert services.timeseries.latest("btc-price-usd") is not None


def test_exhausted_retries_mark_every_kpi_of_the_entry_failed_with_the_reason(
        services: Services, api: RecordedApi, http: httpx.Client, sleeps: SleepLog) -> None:
    collector, params, entry_id, kpi_ids, _ = CASES["coingecko-global"]
    kpi = entry(collector, params, entry_id, kpi_ids, api.base_url(collector))
    prepare(services, kpi)
    api.serve("/api/v3/global", Reply(502, b"<html>Bad gateway</html>"))

    outcome = collect(services, http, sleeps, kpi)

    assert isinstance(outcome, ErrorOutcome)
    assert sorted(outcome.job.settled) == sorted(kpi_ids)
    assert "failed after 4 attempt(s): HTTP 502 Bad Gateway" in outcome.message
    assert sleeps.waits == [1, 2, 4]
    for kpi_id in kpi_ids:
        error = failure_of(services, kpi_id)
        assert error["message"] == outcome.message
        assert (error["status"], error["attempts"]) == (502, 4)
        state = services.jobs.require(TRACE).state_of(kpi_id)
        assert state.detail is not None
        assert state.detail["component"] == "collector:coingecko-global"
        assert state.detail["retryCount"] == 3
        assert services.timeseries.points(kpi_id) == []


def test_a_regional_block_fails_at_once_and_says_so(
        services: Services, api: RecordedApi, http: httpx.Client, sleeps: SleepLog) -> None:
    kpi = entry("binance-ticker", {"field": "priceChangePercent"}, "binance-btcusdt-change-24h",
                base_url=api.base_url("binance-ticker"))
    prepare(services, kpi)
    api.serve("/api/v3/ticker/24hr", Reply(451, recorded("binance_451.json")))

    outcome = collect(services, http, sleeps, kpi)

    assert isinstance(outcome, ErrorOutcome)
    error = failure_of(services, "binance-btcusdt-change-24h")
    assert "HTTP 451" in str(error["message"])
    assert "regional restriction" in str(error["message"])
    assert "restricted location" in str(error["detail"])
    assert sleeps.waits == []
    assert len(api.requests("/api/v3/ticker/24hr")) == 1


def test_a_malformed_answer_fails_with_a_clear_reason_and_stores_nothing(
        services: Services, api: RecordedApi, http: httpx.Client, sleeps: SleepLog) -> None:
    kpi = entry("alternative-me-fng", {}, "fear-greed-index",
                base_url=api.base_url("alternative-me-fng"))
    prepare(services, kpi)
    api.serve("/fng/", Reply.json({"name": "Fear and Greed Index", "data": [
        {"value": "n/a", "value_classification": "Greed", "timestamp": "1732838400"}]}))

    outcome = collect(services, http, sleeps, kpi)

    assert isinstance(outcome, ErrorOutcome)
    message = str(failure_of(services, "fear-greed-index")["message"])
    assert message.startswith("alternative-me-fng: GET ")
    assert "unexpected shape: data[0].value is 'n/a', not a number" in message
    assert services.timeseries.points("fear-greed-index") == []
    assert services.packages.get(TRACE, "fear-greed-index") is None
    assert sleeps.waits == []


def test_values_ingestion_refuses_fail_the_kpi_like_a_refused_callback(
        services: Services, api: RecordedApi, http: httpx.Client, sleeps: SleepLog) -> None:
    kpi = entry("coingecko-price", {"coin": "bitcoin"}, "btc-price-usd",
                base_url=api.base_url("coingecko-price"))
    prepare(services, kpi)
    api.serve("/api/v3/simple/price", Reply.json({"bitcoin": {"usd": 1e200}}))
    outcome = collect(services, http, sleeps, kpi)
    assert isinstance(outcome, ErrorOutcome)
    message = str(failure_of(services, "btc-price-usd")["message"])
    assert message.startswith("coingecko-price: ingestion refused the source's values: data")
    assert "1e-100 and 1e100" in message
    assert services.timeseries.points("btc-price-usd") == []


def test_an_unknown_collector_fails_the_kpi(
        services: Services, http: httpx.Client, sleeps: SleepLog) -> None:
    kpi = entry("coinmarketcap", {}, "cmc-btc-dominance")
    prepare(services, kpi)
    outcome = collect(services, http, sleeps, kpi)
    assert isinstance(outcome, ErrorOutcome)
    error = failure_of(services, "cmc-btc-dominance")
    assert "no built-in collector is named 'coinmarketcap'" in str(error["message"])
    assert "coingecko-price" in str(error["message"])


def test_collect_all_runs_side_by_side_and_one_failure_stops_nothing(
        services: Services, api: RecordedApi, http: httpx.Client, sleeps: SleepLog) -> None:
    services = thread_safe(services)
    kpis = [entry(*CASES[name][:4], base_url=api.base_url(CASES[name][0]))
            for name in ("coingecko-price-multi", "coingecko-global", "fear-and-greed",
                         "cbbi-latest-common-day", "binance-ticker")]
    kpis.append(entry("cbbi-multi", {"indicator": "Confidence"}, "cbbi-confidence-latest",
                      base_url=api.base_url("cbbi-multi")))
    n8n = KpiDefinition.model_validate({
        "id": "n8n-kpi", "name": "From n8n", "kpiType": "market",
        "source": {"kind": "n8n", "webhookUrl": "https://n8n.invalid/webhook/x"}})
    prepare(services, *kpis)
    api.serve("/api/v3/ticker/24hr", Reply(451, recorded("binance_451.json")))

    outcomes = collect_all(services, TRACE, services.clock.now(), [*kpis, n8n], http,
                           max_concurrency=3, sleep=sleeps)

    assert sorted(outcomes) == sorted(k.id for k in kpis)
    failed = {k for k, o in outcomes.items() if isinstance(o, ErrorOutcome)}
    assert failed == {"binance-btcusdt"}
    job = services.jobs.require(TRACE)
    assert sorted(job.with_status(KpiStatus.FAILED)) == ["binance-btc", "binance-btc-change-24h"]
    assert len(job.with_status(KpiStatus.COLLECTED)) == len(job.kpi_ids) - 2
    assert services.timeseries.latest("cbbi-confidence-latest") is not None
    assert len(api.requests("/cbbi/data/latest.json")) == 1  # large: fetched once per cycle


def test_an_unexpected_error_in_one_collector_is_recorded_and_isolated(
        services: Services, api: RecordedApi, http: httpx.Client, sleeps: SleepLog,
        monkeypatch: pytest.MonkeyPatch) -> None:
    services = thread_safe(services)

    def broken(self: object, request: object) -> None:
        raise RuntimeError("bug in a collector")

    monkeypatch.setattr(CoinGeckoPrice, "collect", broken)
    good = entry("alternative-me-fng", {}, "fear-greed-index",
                 base_url=api.base_url("alternative-me-fng"))
    bad = entry("coingecko-price", {"coin": "bitcoin"}, "btc-price-usd",
                base_url=api.base_url("coingecko-price"))
    prepare(services, good, bad)
    outcomes = collect_all(services, TRACE, services.clock.now(), [good, bad], http,
                           sleep=sleeps)
    assert isinstance(outcomes["fear-greed-index"], IngestOutcome)
    assert "unexpected RuntimeError: bug in a collector" in str(
        failure_of(services, "btc-price-usd")["message"])


# The checks below need no store: the collector refuses before any request.

BAD_PARAMS: dict[str, tuple[str, dict[str, Any], str]] = {
    "coins-and-ids-differ": ("coingecko-price", {"coins": {"bitcoin": "other-id"}},
                             "maps to ['other-id'], but the entry yields ['k']"),
    "list-length": ("coingecko-price", {"coins": ["bitcoin", "ethereum"]},
                    "lists 2 name(s) but the entry yields 1 KPI(s)"),
    "missing": ("cbbi-multi", {}, "params.indicators (or params.indicator) is required"),
    "unknown-metric": ("coingecko-global", {"metric": "dominance"}, "unknown /global metric"),
    "unknown-field": ("binance-ticker", {"field": "price"}, "unknown ticker field(s) ['price']"),
    "bad-base-url": ("alternative-me-fng", {"baseUrl": "ftp://mirror"},
                     "params.baseUrl must be an absolute http(s) URL"),
    "bad-peg": ("defillama-stablecoins", {"peg": 3}, "params.peg must be a peg type"),
}


@pytest.mark.parametrize("case", list(BAD_PARAMS))
def test_bad_params_fail_before_any_request(
        case: str, api: RecordedApi, http: httpx.Client, sleeps: SleepLog) -> None:
    collector, params, message = BAD_PARAMS[case]
    kpi = entry(collector, params, "k")
    with pytest.raises(CollectionFailed, match=message.replace("(", "\\(").replace(
            ")", "\\)").replace("[", "\\[").replace("]", "\\]")) as failed:
        COLLECTORS[collector](http, RetryConfig().collection, api.base_url(collector),
                              sleep=sleeps).collect(CollectRequest(TRACE, datetime.now(UTC), kpi))
    assert failed.value.error["code"] == "bad_params"
    assert api.seen == []


MALFORMED: dict[str, tuple[str, dict[str, Any], str, Any, str]] = {
    "coingecko-unknown-coin": ("coingecko-price", {"coin": "bitcoinn"}, "/api/v3/simple/price",
                               {}, "has no usd price for 'bitcoinn' (is the coin id right?)"),
    "global-without-data": ("coingecko-global", {"metric": "markets"}, "/api/v3/global",
                            {"status": "ok"}, "the answer has no 'data'"),
    "fng-error": ("alternative-me-fng", {}, "/fng/",
                  {"data": [], "metadata": {"error": "limit too large"}},
                  "the source reports an error: limit too large"),
    "fng-no-data": ("alternative-me-fng", {}, "/fng/", {"data": []},
                    "data is not a non-empty list"),
    "cbbi-missing-indicator": ("cbbi-multi", {"indicator": "Nope"}, "/cbbi/data/latest.json",
                               {"Price": {"1732838400": 1}}, "the answer has no 'Nope'"),
    "cbbi-no-common-day": ("cbbi-multi", {"indicators": ["Price", "MVRV"]},
                           "/cbbi/data/latest.json",
                           {"Price": {"1732838400": 1}, "MVRV": {"1732752000": 0.5}},
                           "the indicators ['MVRV', 'Price'] have no day in common"),
    "defillama-not-a-list": ("defillama-stablecoins", {}, "/stablecoincharts/all",
                             {"message": "rate limited"},
                             "the answer is not a non-empty list of days"),
    "defillama-only-today": ("defillama-stablecoins", {}, "/stablecoincharts/all",
                             [{"date": "4102444800", "totalCirculatingUSD": {"peggedUSD": 1}}],
                             "the answer has no day before today"),
    "binance-ms-as-seconds": ("binance-ticker", {"field": "lastPrice"}, "/api/v3/ticker/24hr",
                              {"lastPrice": "1.0", "closeTime": 1e20},
                              "closeTime is 1e+20, not a Unix time in milliseconds"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_answers_name_what_is_wrong(
        case: str, api: RecordedApi, http: httpx.Client, sleeps: SleepLog) -> None:
    collector, params, path, body, message = MALFORMED[case]
    kpi = entry(collector, params, "k", ["k", "k2"] if case == "cbbi-no-common-day" else None)
    api.serve(path, Reply.json(body))
    with pytest.raises(CollectionFailed) as failed:
        COLLECTORS[collector](http, RetryConfig().collection, api.base_url(collector),
                              sleep=sleeps).collect(CollectRequest(TRACE, datetime.now(UTC), kpi))
    assert message in str(failed.value)
    assert failed.value.error["code"] == "malformed_response"
    assert str(failed.value.error["url"]).startswith(api.url + path)
    assert sleeps.waits == []


def test_defillama_takes_the_last_complete_day(
        api: RecordedApi, http: httpx.Client, sleeps: SleepLog) -> None:
    kpi = entry("defillama-stablecoins", {"peg": "peggedUSD"}, "stablecoins-usd")
    during_the_last_day = datetime(2024, 11, 29, 6, 0, tzinfo=UTC)
    result = COLLECTORS["defillama-stablecoins"](
        http, RetryConfig().collection, api.base_url("defillama-stablecoins"), sleep=sleeps,
    ).collect(CollectRequest(TRACE, during_the_last_day, kpi))
    assert result.timestamp == at(1732752000)
    assert result.values == {"stablecoins-usd": 190118540711.7713}


def test_the_coingecko_key_is_sent_as_a_header_and_never_shown(
        api: RecordedApi, http: httpx.Client, sleeps: SleepLog,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRIC_STREAM_COINGECKO_API_KEY", "CG-secret-demo-key")
    kpi = entry("coingecko-price", {"coin": "bitcoin"}, "btc-price-usd")
    collector = CoinGeckoPrice(http, RetryConfig().collection, api.base_url("coingecko-price"),
                               sleep=sleeps)
    result = collector.collect(CollectRequest(TRACE, datetime.now(UTC), kpi))
    assert api.requests("/api/v3/simple/price")[0].headers["x-cg-demo-api-key"] == (
        "CG-secret-demo-key")
    assert "CG-secret" not in result.model_dump_json()

    api.serve("/api/v3/simple/price", Reply(401, b'{"error": "invalid key"}'))
    with pytest.raises(CollectionFailed) as failed:
        collector.collect(CollectRequest(TRACE, datetime.now(UTC), kpi))
    assert "check its API key" in str(failed.value)
    assert "CG-secret" not in repr(failed.value.error)

    pro = entry("coingecko-price", {"coin": "bitcoin",
                                    "baseUrl": "https://pro-api.coingecko.com/api/v3"}, "p")
    explicit = CoinGeckoPrice(http, RetryConfig().collection, api_key="CG-pro")
    assert explicit.headers(CollectRequest(TRACE, datetime.now(UTC), pro)) == {
        "x-cg-pro-api-key": "CG-pro"}
