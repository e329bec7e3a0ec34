"""KPI time series: one record per point, idempotent appends, range reads.

The same KPI and timestamp never make two points: a replay of the same value is a
duplicate (reported, not an error), another value for a stored timestamp is a
`PointConflict` and overwrites nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from metric_stream.errors import ConditionFailed, PointConflict, StorageError
from metric_stream.models.base import iso
from metric_stream.models.timeseries import DataPoint
from metric_stream.ports import Absent, Delete, Item, Key, Op, Put, RecordStore
from metric_stream.storage import keys

_RACE_RETRIES = 5


@dataclass
class AppendOutcome:
    stored: list[DataPoint] = field(default_factory=list)
    duplicates: list[DataPoint] = field(default_factory=list)


@dataclass
class BulkOutcome:
    stored: int = 0
    duplicates: int = 0
    conflicts: list[DataPoint] = field(default_factory=list)


def _body(point: DataPoint) -> dict[str, object]:
    return point.model_dump(mode="json", by_alias=True, exclude_none=True)


def _point(item: dict[str, object]) -> DataPoint:
    """A stored point, as written (validated then): built without validating again when
    it has the stored shape — a cycle over 200 KPIs reads 146,000 points twice, and
    validating (or pydantic's `model_construct`, ~8 µs a point) was a third of its time.
    Anything else (an older record, a number stored as Decimal) is validated.
    `tests/unit/test_timeseries_read.py` checks both give the same point."""
    stamp, value, kpi_id = item.get("timestamp"), item.get("value"), item.get("kpiId")
    if (isinstance(stamp, str) and stamp.endswith("Z") and type(value) in (float, int)
            and isinstance(kpi_id, str) and _STORED_KEYS.issuperset(item)):
        try:
            moment = datetime.fromisoformat(stamp)
        except ValueError:
            return DataPoint.model_validate(item)
        metadata = item.get("metadata")
        return _built({"kpi_id": kpi_id, "timestamp": moment, "value": float(value),  # type: ignore[arg-type]
                       "metadata": metadata if isinstance(metadata, dict) else {},
                       "trace_id": item.get("traceId"), "source": item.get("source")})
    return DataPoint.model_validate(item)


def _built(fields: dict[str, object]) -> DataPoint:
    """A DataPoint from already valid field values: what `model_construct` does, without
    its per-field default handling (every field is given here)."""
    point = DataPoint.__new__(DataPoint)
    _set(point, "__dict__", fields)
    _set(point, "__pydantic_fields_set__", set(_ALL_FIELDS))
    _set(point, "__pydantic_extra__", None)
    _set(point, "__pydantic_private__", None)
    return point


_set = object.__setattr__
_ALL_FIELDS = frozenset(DataPoint.model_fields)
_STORED_KEYS = frozenset({"kpiId", "timestamp", "value", "metadata", "traceId", "source"})


def _same_value(stored: dict[str, object], point: DataPoint) -> bool:
    # compared as stored (no re-validation): a re-import of 100k rows checks 100k of these
    value = stored.get("value")
    return isinstance(value, int | float) and float(value) == point.value


class TimeSeriesStore:
    def __init__(self, records: RecordStore) -> None:
        self.records = records

    def points(self, kpi_id: str, *, start: datetime | None = None, end: datetime | None = None,
               limit: int | None = None, descending: bool = False) -> list[DataPoint]:
        """Points of one KPI with `start <= timestamp <= end`, oldest first (or newest)."""
        rows = self.records.query(
            keys.timeseries(kpi_id),
            start=iso(start) if start else None,
            end=iso(end) if end else None,
            limit=limit,
            descending=descending,
        )
        return [_point(item) for _, item in rows]

    def latest(self, kpi_id: str) -> DataPoint | None:
        found = self.points(kpi_id, limit=1, descending=True)
        return found[0] if found else None

    def get(self, kpi_id: str, timestamp: datetime) -> DataPoint | None:
        item = self.records.get(keys.point(kpi_id, timestamp))
        return None if item is None else _point(item)

    def append(self, points: Sequence[DataPoint], *, also: Sequence[Op] = (),
               prefetched: Mapping[Key, Item] | None = None) -> AppendOutcome:
        """Store the new points and the `also` operations in one atomic write.

        Points already stored with the same value are skipped as duplicates; if any
        point meets another value, `PointConflict` is raised and nothing is written.
        `prefetched` may hold the points' records, read with `point_keys`.
        """
        for attempt in range(_RACE_RETRIES):
            existing = prefetched if prefetched is not None and attempt == 0 else (
                self.records.get_many(self.point_keys(points)))
            outcome = AppendOutcome()
            for p in points:
                stored = existing.get(keys.point(p.kpi_id, p.timestamp))
                if stored is None:
                    outcome.stored.append(p)
                elif _same_value(stored, p):
                    outcome.duplicates.append(p)
                else:
                    raise PointConflict(
                        f"{p.kpi_id} already has value {_point(stored).value!r} at "
                        f"{iso(p.timestamp)}; refusing {p.value!r}",
                        field="data",
                    )
            ops: list[Op] = [self.put_op(p) for p in outcome.stored]
            try:
                self.records.write([*ops, *also])
            except ConditionFailed as failed:
                if not any(i < len(ops) for i in failed.indexes):
                    raise  # one of the caller's own conditions: theirs to handle
                continue  # another writer stored one of these points meanwhile: look again
            return outcome
        raise StorageError("points kept changing under concurrent writers; try again")

    def append_many(self, points: Sequence[DataPoint]) -> BulkOutcome:
        """Bulk import: each point on its own (not atomic as a group)."""
        outcome = BulkOutcome()
        written = self.records.put_many([self.put_op(p) for p in points])
        losers = [p for p, ok in zip(points, written, strict=True) if not ok]
        outcome.stored = len(points) - len(losers)
        existing = self.records.get_many(keys.point(p.kpi_id, p.timestamp) for p in losers)
        for p in losers:
            stored = existing.get(keys.point(p.kpi_id, p.timestamp))
            if stored is not None and _same_value(stored, p):
                outcome.duplicates += 1
            else:
                outcome.conflicts.append(p)
        return outcome

    def delete(self, points: Sequence[DataPoint]) -> None:
        self.records.delete_many([keys.point(p.kpi_id, p.timestamp) for p in points])

    @staticmethod
    def point_keys(points: Sequence[DataPoint]) -> list[Key]:
        return [keys.point(p.kpi_id, p.timestamp) for p in points]

    @staticmethod
    def put_op(point: DataPoint) -> Put:
        return Put(keys.point(point.kpi_id, point.timestamp), _body(point), Absent())

    @staticmethod
    def delete_op(point: DataPoint) -> Delete:
        return Delete(keys.point(point.kpi_id, point.timestamp))

    @staticmethod
    def key(kpi_id: str, timestamp: datetime) -> Key:
        return keys.point(kpi_id, timestamp)
