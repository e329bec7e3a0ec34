"""The BlobStore and Queue contracts, run against every backend."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest

from metric_stream.bootstrap import Services
from metric_stream.errors import InvalidInput, NotFound


def test_blob_round_trip_list_and_delete(services: Services) -> None:
    blobs = services.blobs
    blobs.put("reports/2026/11/trace_1.pdf", b"%PDF-1.7 demo", content_type="application/pdf")
    blobs.put("charts/trace_1/btc.png", b"\x89PNG")
    assert blobs.get("reports/2026/11/trace_1.pdf") == b"%PDF-1.7 demo"
    assert blobs.exists("charts/trace_1/btc.png")
    assert blobs.keys("reports/") == ["reports/2026/11/trace_1.pdf"]
    assert blobs.keys() == ["charts/trace_1/btc.png", "reports/2026/11/trace_1.pdf"]
    blobs.put("charts/trace_1/btc.png", b"replaced")
    assert blobs.get("charts/trace_1/btc.png") == b"replaced"
    blobs.delete("charts/trace_1/btc.png")
    assert not blobs.exists("charts/trace_1/btc.png")
    with pytest.raises(NotFound):
        blobs.get("charts/trace_1/btc.png")


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "a/../b", "a//b", "dir/", ""])
def test_blob_keys_must_be_safe_relative_paths(services: Services, key: str) -> None:
    with pytest.raises(InvalidInput):
        services.blobs.put(key, b"x")


def test_blob_url(services: Services) -> None:
    services.blobs.put("reports/trace_1.pdf", b"%PDF")
    url = services.blobs.url("reports/trace_1.pdf")
    parts = urlsplit(url)
    if services.settings.backend == "aws":
        assert parts.scheme == "https"
        assert "reports/trace_1.pdf" in parts.path
        assert "X-Amz-Signature" in parts.query or "Signature" in parts.query
    else:
        assert parts.scheme == "file"
        with open(parts.path, "rb") as f:
            assert f.read() == b"%PDF"


def test_queue_send_receive_ack(services: Services) -> None:
    q = services.queue
    q.send("analysis", {"traceId": "trace_1"})
    q.send("analysis", {"traceId": "trace_2"})
    got = q.receive("analysis", max_messages=10)
    assert sorted(m.body["traceId"] for m in got) == ["trace_1", "trace_2"]
    assert all(m.receive_count == 1 for m in got)
    assert q.receive("analysis") == []  # in flight: hidden
    assert q.depth("analysis").in_flight == 2
    for m in got:
        q.ack("analysis", m)
    assert q.depth("analysis").visible == 0
    assert q.depth("analysis").in_flight == 0
    assert q.receive("packaging") == []


def test_unacknowledged_message_comes_back_after_visibility_timeout(services: Services) -> None:
    q = services.queue
    q.send("delivery", {"traceId": "trace_9"})
    first = q.receive("delivery", visibility_timeout=1)
    assert len(first) == 1
    time.sleep(1.3)
    again = q.receive("delivery", visibility_timeout=30, wait_seconds=1)
    assert [m.body for m in again] == [{"traceId": "trace_9"}]
    assert again[0].receive_count == 2
    q.ack("delivery", again[0])
    assert q.receive("delivery") == []


def test_release_makes_a_message_visible_again(services: Services) -> None:
    q = services.queue
    q.send("packaging", {"traceId": "t"})
    (m,) = q.receive("packaging")
    q.release("packaging", m)
    (again,) = q.receive("packaging", wait_seconds=1)
    assert again.receive_count == 2


def test_dead_letter_after_max_receives(services: Services) -> None:
    q = services.queue  # max_receives = 2 in the test settings
    q.send("analysis", {"traceId": "poison"})
    for expected_count in (1, 2):
        (m,) = q.receive("analysis", wait_seconds=1)
        assert m.receive_count == expected_count
        q.release("analysis", m)
    assert q.receive("analysis", wait_seconds=1) == []
    deadline = time.monotonic() + 5
    while q.depth("analysis").dead_letters == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert q.depth("analysis").dead_letters == 1
    dead = q.dead_letters("analysis")
    assert [m.body for m in dead] == [{"traceId": "poison"}]


def test_unknown_queue_is_refused(services: Services) -> None:
    with pytest.raises(InvalidInput, match="unknown queue"):
        services.queue.send("nope", {})


def test_dead_letter_on_purpose_keeps_the_reason(services: Services) -> None:
    q = services.queue
    q.send("packaging", {"not": "a stage message"})
    (m,) = q.receive("packaging")
    q.dead_letter("packaging", m, "the message has no traceId")
    assert q.receive("packaging") == []
    deadline = time.monotonic() + 5
    while q.depth("packaging").dead_letters == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    (dead,) = q.dead_letters("packaging")
    assert dead.body == {"not": "a stage message"}
    assert dead.reason == "the message has no traceId"
