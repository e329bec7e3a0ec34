"""The RecordStore contract, run against every backend."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from metric_stream.bootstrap import Services
from metric_stream.clock import ManualClock
from metric_stream.errors import ConditionFailed
from metric_stream.ports import Absent, AllOf, Check, Delete, Exists, FieldIn, Key, Put, Update

A, B, C = Key("p:1", "a"), Key("p:1", "b"), Key("p:1", "c")


def test_put_and_get_round_trip_nested_values(services: Services) -> None:
    body = {"value": 65432.125, "n": 3, "flag": True, "none": None, "text": "héllo ✓",
            "nested": {"list": [1, 2.5, "x", {"deep": False}], "empty": {}}, "tiny": 1.5e-9,
            "big": 2.5e15}
    services.records.write([Put(A, body)])
    assert services.records.get(A) == body
    assert services.records.get(Key("p:1", "missing")) is None


def test_absent_condition_refuses_second_put_and_keeps_the_first(services: Services) -> None:
    services.records.write([Put(A, {"v": 1}, Absent())])
    with pytest.raises(ConditionFailed) as failed:
        services.records.write([Put(A, {"v": 2}, Absent())])
    assert failed.value.indexes == (0,)
    assert services.records.get(A) == {"v": 1}


def test_atomic_batch_writes_all_or_nothing(services: Services) -> None:
    services.records.write([Put(B, {"v": "old"})])
    with pytest.raises(ConditionFailed) as failed:
        services.records.write([Put(A, {"v": 1}, Absent()), Put(B, {"v": 2}, Absent()),
                                Update(C, set={"x": 1})])
    assert failed.value.indexes == (1,)
    assert services.records.get(A) is None
    assert services.records.get(C) is None
    assert services.records.get(B) == {"v": "old"}

    services.records.write([Put(A, {"v": 1}, Absent()), Update(C, set={"x": 1}),
                            Check(B, FieldIn("v", ("old",)))])
    assert services.records.get(A) == {"v": 1}
    assert services.records.get(C) == {"x": 1}


def test_update_sets_adds_removes_and_respects_conditions(services: Services) -> None:
    services.records.write([Put(A, {"status": "pending", "n": 1, "gone": "x"})])
    services.records.write([Update(A, set={"status": "collected"}, add={"n": 2},
                                   remove=("gone",), condition=FieldIn("status", ("pending",)))])
    assert services.records.get(A) == {"status": "collected", "n": 3}
    with pytest.raises(ConditionFailed):
        services.records.write([Update(A, set={"status": "failed"},
                                       condition=FieldIn("status", ("pending",)))])
    assert services.records.get(A) == {"status": "collected", "n": 3}
    with pytest.raises(ConditionFailed):
        services.records.write([Update(B, set={"x": 1},
                                       condition=AllOf((Exists(), FieldIn("x", (0,)))))])
    assert services.records.get(B) is None


def test_delete_with_condition(services: Services) -> None:
    services.records.write([Put(A, {"v": 1})])
    with pytest.raises(ConditionFailed):
        services.records.write([Delete(A, FieldIn("v", (2,)))])
    assert services.records.get(A) == {"v": 1}
    services.records.write([Delete(A, Exists())])
    assert services.records.get(A) is None


def test_query_ranges_prefix_limit_and_order_within_one_partition(services: Services) -> None:
    services.records.put_many([Put(Key("ts:x", f"2026-01-{d:02d}"), {"d": d})
                               for d in range(1, 11)])
    services.records.put_many([Put(Key("ts:y", f"2026-01-{d:02d}"), {"d": -d})
                               for d in range(1, 4)])
    services.records.write([Put(Key("ts:x", "2026-02-01"), {"d": 32})])

    assert [i["d"] for _, i in services.records.query("ts:x")] == [*range(1, 11), 32]
    assert [s for s, _ in services.records.query("ts:x", start="2026-01-03", end="2026-01-05")] == [
        "2026-01-03", "2026-01-04", "2026-01-05"]
    assert [i["d"] for _, i in services.records.query("ts:x", prefix="2026-02")] == [32]
    assert [i["d"] for _, i in services.records.query("ts:x", limit=2, descending=True)] == [32, 10]
    assert [i["d"] for _, i in services.records.query(
        "ts:x", start="2026-01-09", prefix="2026-01")] == [9, 10]
    assert services.records.query("ts:none") == []


def test_get_many_returns_only_existing(services: Services) -> None:
    services.records.write([Put(A, {"v": 1}), Put(C, {"v": 3})])
    assert services.records.get_many([A, B, C]) == {A: {"v": 1}, C: {"v": 3}}


def test_put_many_reports_each_condition(services: Services) -> None:
    services.records.write([Put(B, {"v": "old"})])
    written = services.records.put_many([Put(A, {"v": 1}, Absent()), Put(B, {"v": 2}, Absent()),
                                         Put(C, {"v": 3})])
    assert written == [True, False, True]
    assert services.records.get(B) == {"v": "old"}


def test_ttl_expiry(services: Services, clock: ManualClock) -> None:
    services.records.write([Put(A, {"v": 1}, expires_at=clock.now() + timedelta(seconds=10)),
                            Put(B, {"v": 2})])
    assert services.records.get(A) == {"v": 1}
    clock.advance(11)
    assert services.records.get(A) is None
    assert [sk for sk, _ in services.records.query("p:1")] == ["b"]
    services.records.write([Put(A, {"v": "new"}, Absent())])  # expired counts as absent
    assert services.records.get(A) == {"v": "new"}

    services.records.write([Put(C, {"v": 3}, expires_at=clock.now() + timedelta(seconds=5))])
    clock.advance(6)
    assert services.records.purge_expired() >= 1
    assert services.records.get(C) is None
    assert services.records.get(B) == {"v": 2}


def test_reserved_fields_are_refused(services: Services) -> None:
    with pytest.raises(ValueError, match="reserved"):
        services.records.write([Put(A, {"pk": "x"})])


def test_two_hundred_concurrent_updates_lose_nothing(services: Services) -> None:
    services.records.write([Put(A, {"n": 0})])
    barrier = threading.Barrier(20)

    def bump(i: int) -> None:
        if i < 20:
            barrier.wait()
        services.records.write([Update(A, add={"n": 1})])

    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(bump, range(200)))
    assert services.records.get(A) == {"n": 200}


def test_conditional_race_has_exactly_one_winner(services: Services) -> None:
    services.records.write([Put(A, {"status": "pending"})])
    wins: list[int] = []

    def claim(i: int) -> None:
        try:
            services.records.write([Update(A, set={"status": "done", "by": i},
                                           condition=FieldIn("status", ("pending",)))])
            wins.append(i)
        except ConditionFailed:
            pass

    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(claim, range(100)))
    assert len(wins) == 1
    assert services.records.get(A) == {"status": "done", "by": wins[0]}


def test_any_of_and_at_most_conditions(services: Services) -> None:
    from metric_stream.ports import AnyOf, FieldAtMost

    lease_free = AnyOf((FieldIn("leaseUntil", (None,)), FieldAtMost("leaseUntil", 100)))
    services.records.write([Put(A, {"status": "analysing"})])
    services.records.write([Update(A, set={"leaseUntil": 150}, condition=lease_free)])
    with pytest.raises(ConditionFailed):
        services.records.write([Update(A, set={"leaseUntil": 300}, condition=lease_free)])
    services.records.write([Update(A, set={"leaseUntil": 90})])
    services.records.write([Update(A, set={"leaseUntil": 400}, condition=lease_free)])
    assert services.records.get(A) == {"status": "analysing", "leaseUntil": 400}
    with pytest.raises(ConditionFailed):
        services.records.write([Update(B, set={"x": 1}, condition=FieldAtMost("n", 5))])
