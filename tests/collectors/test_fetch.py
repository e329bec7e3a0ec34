"""The shared fetch: retries with the policy's backoff, Retry-After, no retry on a
client error, failures that name the source and URL but never a secret."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from metric_stream.collectors.base import CollectionFailed
from metric_stream.collectors.http import ResponseCache, fetch_json, public_url
from metric_stream.models.config import RetryConfig, RetryPolicy
from tests.collectors.conftest import RecordedApi, Reply, SleepLog

POLICY = RetryConfig().collection  # SPEC's default: 3 retries after 1, 2, 4 s
PRICE = "/api/v3/simple/price"


def fetch(api: RecordedApi, http: httpx.Client, sleeps: SleepLog, path: str = PRICE,
          **options: object) -> object:
    return fetch_json(http, api.url + path, source="test-source", retry=POLICY, sleep=sleeps,
                      **options)  # type: ignore[arg-type]


def test_the_default_policy_is_three_retries_after_one_two_four_seconds() -> None:
    assert (POLICY.retries, POLICY.delays_s) == (3, [1, 2, 4])


def test_server_errors_are_retried_with_the_policy_delays(
        api: RecordedApi, http: httpx.Client, sleeps: SleepLog) -> None:
    api.answer(PRICE, Reply(500), Reply(502), Reply(504))
    answer = fetch(api, http, sleeps)
    assert isinstance(answer, dict)
    assert answer["bitcoin"]["usd"] == 97312
    assert sleeps.waits == [1, 2, 4]
    assert len(api.requests(PRICE)) == 4


def test_a_429_waits_as_long_as_retry_after_says(
        api: RecordedApi, http: httpx.Client, sleeps: SleepLog) -> None:
    api.answer(PRICE, Reply(503), Reply(429, headers={"Retry-After": "3"}))
    fetch(api, http, sleeps)
    assert sleeps.waits == [1, 3]


def test_retry_after_as_an_http_date_counts_from_the_servers_date(
        api: RecordedApi, http: httpx.Client, sleeps: SleepLog) -> None:
    sent = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
    api.answer(PRICE, Reply(503, headers={
        "Date": format_datetime(sent, usegmt=True),
        "Retry-After": format_datetime(sent + timedelta(seconds=7), usegmt=True)}))
    fetch(api, http, sleeps)
    assert sleeps.waits == [pytest.approx(7)]


def test_retry_after_is_capped_and_a_bad_one_falls_back_to_the_policy(
        api: RecordedApi, http: httpx.Client, sleeps: SleepLog) -> None:
    api.answer(PRICE, Reply(429, headers={"Retry-After": "86400"}),
               Reply(429, headers={"Retry-After": "soon"}))
    fetch(api, http, sleeps)
    assert sleeps.waits == [60, 2]


def test_exhausted_retries_name_the_source_url_and_last_status_but_no_secret(
        api: RecordedApi, http: httpx.Client, sleeps: SleepLog) -> None:
    api.serve(PRICE, Reply(503, b"<html>down</html>"))
    with pytest.raises(CollectionFailed) as failed:
        fetch(api, http, sleeps, params={"ids": "bitcoin", "api_key": "SECRET-1"},
              headers={"x-cg-demo-api-key": "SECRET-2"})
    error = failed.value.error
    message = str(error["message"])
    assert message.startswith("test-source: GET ")
    assert f"{api.url}{PRICE}?ids=bitcoin" in message
    assert "after 4 attempt(s): HTTP 503 Service Unavailable" in message
    assert (error["status"], error["attempts"], error["code"]) == (503, 4, "retries_exhausted")
    assert "SECRET" not in repr(error)
    assert api.requests(PRICE)[0].headers["x-cg-demo-api-key"] == "SECRET-2"
    assert api.requests(PRICE)[0].query["api_key"] == "SECRET-1"


def test_a_client_error_is_not_retried(
        api: RecordedApi, http: httpx.Client, sleeps: SleepLog) -> None:
    api.serve(PRICE, Reply.json({"error": "coin not found"}, 404))
    with pytest.raises(CollectionFailed) as failed:
        fetch(api, http, sleeps)
    assert "HTTP 404 Not Found: not found; check the base URL" in str(failed.value)
    assert failed.value.error["detail"] == '{"error": "coin not found"}'
    assert sleeps.waits == []
    assert len(api.requests(PRICE)) == 1


def test_dropped_connections_are_retried(
        api: RecordedApi, http: httpx.Client, sleeps: SleepLog) -> None:
    api.answer(PRICE, Reply(drop=True), Reply(drop=True))
    assert isinstance(fetch(api, http, sleeps), dict)
    assert sleeps.waits == [1, 2]


def test_a_refused_connection_is_retried_then_reported(
        http: httpx.Client, sleeps: SleepLog) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(CollectionFailed) as failed:
        fetch_json(http, f"http://127.0.0.1:{port}/x", source="nowhere",
                   retry=RetryPolicy(retries=2, delays_s=[0, 0]), sleep=sleeps)
    assert "after 3 attempt(s): ConnectError" in str(failed.value)
    assert "status" not in failed.value.error
    assert sleeps.waits == [0, 0]


def test_a_body_that_is_not_json_fails_clearly(
        api: RecordedApi, http: httpx.Client, sleeps: SleepLog) -> None:
    api.serve(PRICE, Reply(200, b"<html>Just a moment...</html>"))
    with pytest.raises(CollectionFailed, match="not JSON \\(it starts '<html>Just a moment"):
        fetch(api, http, sleeps)


def test_the_cycle_cache_fetches_one_url_once_for_concurrent_askers(
        api: RecordedApi, http: httpx.Client, sleeps: SleepLog) -> None:
    cache = ResponseCache()
    answers: list[object] = []
    threads = [threading.Thread(target=lambda: answers.append(
        fetch(api, http, sleeps, "/cbbi/data/latest.json", cache=cache))) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 6
    assert all(a is answers[0] for a in answers)
    assert len(api.requests("/cbbi/data/latest.json")) == 1


def test_a_failed_fetch_is_not_cached(
        api: RecordedApi, http: httpx.Client, sleeps: SleepLog) -> None:
    cache = ResponseCache()
    api.answer(PRICE, Reply(400))
    with pytest.raises(CollectionFailed):
        fetch(api, http, sleeps, cache=cache)
    assert isinstance(fetch(api, http, sleeps, cache=cache), dict)


def test_public_url_drops_user_info_and_secret_parameters() -> None:
    shown = public_url("https://user:pw@example.com:8443/v1/x?token=t",
                       {"symbol": "BTCUSDT", "apiKey": "k", "access_token": "t"})
    assert shown == "https://example.com:8443/v1/x?symbol=BTCUSDT"
