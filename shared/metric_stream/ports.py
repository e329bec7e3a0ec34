"""What the core needs from the outside world, in one place.

Backends implement three ports: `RecordStore` (keyed records with conditional,
atomic writes and TTL), `BlobStore` (files: charts, reports, archives) and `Queue`
(the stage queues). Everything the backends have in common — TTL, reserved
attribute names, key and queue-name checks — lives here once, in the base classes;
each backend fills in only the underscored primitives. The typed stores
(`metric_stream.storage`) are written once, on top of `RecordStore`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from metric_stream.errors import InvalidInput

Item = dict[str, Any]
"""A record's body: JSON-compatible values under string field names."""

RESERVED_FIELDS = frozenset({"pk", "sk", "expiresAt"})
MAX_BATCH = 100  # DynamoDB's TransactWriteItems limit, kept on every backend


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


@dataclass(frozen=True, slots=True, order=True)
class Key:
    """A record's address: partition (`job:trace_...`) and sort key within it."""

    pk: str
    sk: str

    def __str__(self) -> str:
        return f"{self.pk}:{self.sk}" if self.sk != "#" else self.pk


# ---------------------------------------------------------------- conditions
class Condition(ABC):
    """A predicate on a record's current body (None: the record does not exist)."""

    @abstractmethod
    def holds(self, item: Item | None) -> bool: ...


@dataclass(frozen=True)
class Absent(Condition):
    """The record does not exist (or has expired)."""

    def holds(self, item: Item | None) -> bool:
        return item is None


@dataclass(frozen=True)
class Exists(Condition):
    def holds(self, item: Item | None) -> bool:
        return item is not None


@dataclass(frozen=True)
class FieldIn(Condition):
    """The record exists and `field` equals one of `values`."""

    field: str
    values: tuple[Any, ...]

    def holds(self, item: Item | None) -> bool:
        return item is not None and item.get(self.field) in self.values


@dataclass(frozen=True)
class FieldAtMost(Condition):
    """The record exists and `field` is a number no greater than `limit`."""

    field: str
    limit: int | float

    def holds(self, item: Item | None) -> bool:
        value = None if item is None else item.get(self.field)
        return isinstance(value, int | float) and not isinstance(value, bool) and \
            value <= self.limit


@dataclass(frozen=True)
class AllOf(Condition):
    conditions: tuple[Condition, ...]

    def holds(self, item: Item | None) -> bool:
        return all(c.holds(item) for c in self.conditions)


@dataclass(frozen=True)
class AnyOf(Condition):
    conditions: tuple[Condition, ...]

    def holds(self, item: Item | None) -> bool:
        return any(c.holds(item) for c in self.conditions)


# ---------------------------------------------------------------- operations
@dataclass(frozen=True)
class Put:
    """Write a whole record; `expires_at` gives it a TTL (it reads as absent after)."""

    key: Key
    item: Item
    condition: Condition | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Update:
    """Change some top-level fields of a record (creating it if absent, unless the
    condition says otherwise): `set` values, `add` to numbers, `remove` fields."""

    key: Key
    set: Mapping[str, Any] = field(default_factory=dict)
    add: Mapping[str, int | float] = field(default_factory=dict)
    remove: tuple[str, ...] = ()
    condition: Condition | None = None


@dataclass(frozen=True)
class Delete:
    key: Key
    condition: Condition | None = None


@dataclass(frozen=True)
class Check:
    """Write nothing; only require `condition` for the batch to go through."""

    key: Key
    condition: Condition


Op = Put | Update | Delete | Check


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def apply_update(item: Item | None, op: Update) -> Item:
    """The body an `Update` leaves (the semantics every backend implements)."""
    new = dict(item or {})
    new.update(op.set)
    for name, amount in op.add.items():
        current = new.get(name, 0)
        new[name] = (current if isinstance(current, int | float) else 0) + amount
    for name in op.remove:
        new.pop(name, None)
    return new


# ---------------------------------------------------------------- record store
class RecordStore(ABC):
    """Keyed records, sorted by `sk` within a partition `pk`, with TTL.

    `write` is atomic: every operation of the batch happens, or none (and
    `ConditionFailed` names the operations whose condition was false). Reads never
    return expired records, and conditions treat them as absent.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    # ---- public API (shared by every backend)
    def get(self, key: Key) -> Item | None:
        return self.get_many([key]).get(key)

    def get_many(self, keys: Iterable[Key]) -> dict[Key, Item]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        now = epoch(self.clock.now())
        found = self._get_many(wanted)
        return {k: self._strip(v) for k, v in found.items() if self._alive(v, now)}

    def query(
        self,
        pk: str,
        *,
        start: str | None = None,
        end: str | None = None,
        prefix: str | None = None,
        limit: int | None = None,
        descending: bool = False,
    ) -> list[tuple[str, Item]]:
        """Records of one partition with `start <= sk <= end` (and `sk` starting with
        `prefix`), in `sk` order; only that partition is read."""
        now = epoch(self.clock.now())
        rows = self._query(pk, start, end, prefix, limit, descending)
        return [(sk, self._strip(item)) for sk, item in rows if self._alive(item, now)]

    def write(self, ops: Sequence[Op]) -> None:
        if not ops:
            return
        if len(ops) > MAX_BATCH:
            raise ValueError(f"an atomic write holds at most {MAX_BATCH} operations")
        keys = [op.key for op in ops]
        if len(set(keys)) != len(keys):
            raise ValueError("an atomic write touches each record at most once")
        for op in ops:
            self._check_body(op)
        self._write(ops, self.clock.now())

    def put_many(self, puts: Sequence[Put]) -> list[bool]:
        """Write many records, each on its own (not atomic as a group); returns, per
        record, whether it was written (False: its condition was false)."""
        for op in puts:
            self._check_body(op)
        return self._put_many(puts, self.clock.now()) if puts else []

    def delete_many(self, keys: Sequence[Key]) -> None:
        if keys:
            self._delete_many(keys)

    def purge_expired(self) -> int:
        """Delete expired records now (backends with native TTL do it on their own too)."""
        return self._purge_expired(self.clock.now())

    def scrub(self) -> bool:
        """Leave no copy of overwritten or deleted records in the backend's own files
        (the embedded database's free pages and write-ahead log); False if another
        process kept that from finishing. Nothing to do on a managed service."""
        return True

    # ---- shared helpers
    @staticmethod
    def _alive(item: Item, now: int) -> bool:
        expires = item.get("expiresAt")
        return expires is None or int(expires) > now

    @staticmethod
    def _strip(item: Item) -> Item:
        if RESERVED_FIELDS.isdisjoint(item):  # most records (every point): no copy
            return item
        return {k: v for k, v in item.items() if k not in RESERVED_FIELDS}

    @staticmethod
    def _check_body(op: Op) -> None:
        names: Iterable[str] = ()
        if isinstance(op, Put):
            names = op.item.keys()
        elif isinstance(op, Update):
            names = [*op.set, *op.add, *op.remove]
        clash = RESERVED_FIELDS.intersection(names)
        if clash:
            raise ValueError(f"record fields {sorted(clash)} are reserved")

    # ---- what a backend fills in
    @abstractmethod
    def create(self) -> list[str]:
        """Create what the backend needs, idempotently; returns what was created."""

    @abstractmethod
    def _get_many(self, keys: Sequence[Key]) -> dict[Key, Item]:
        """Raw bodies (with `expiresAt` where set) of the records that exist."""

    @abstractmethod
    def _query(self, pk: str, start: str | None, end: str | None, prefix: str | None,
               limit: int | None, descending: bool) -> list[tuple[str, Item]]: ...

    @abstractmethod
    def _write(self, ops: Sequence[Op], now: datetime) -> None:
        """Apply all of `ops` atomically, treating records expired at `now` as absent."""

    @abstractmethod
    def _put_many(self, puts: Sequence[Put], now: datetime) -> list[bool]: ...

    @abstractmethod
    def _delete_many(self, keys: Sequence[Key]) -> None: ...

    @abstractmethod
    def _purge_expired(self, now: datetime) -> int: ...


# ---------------------------------------------------------------- blob store
_BLOB_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/=-]{0,1023}$")


class BlobStore(ABC):
    """Files by key (`reports/2026/11/trace_....pdf`), and a URL to hand out for one."""

    @staticmethod
    def check_key(key: str) -> str:
        if not _BLOB_KEY.match(key) or ".." in key.split("/") or "//" in key or key.endswith("/"):
            raise InvalidInput(f"blob key {key!r} is not a safe relative path", field="key")
        return key

    def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        self._put(self.check_key(key), data, content_type)

    def get(self, key: str) -> bytes:
        """The blob's bytes; `NotFound` if there is none."""
        return self._get(self.check_key(key))

    def exists(self, key: str) -> bool:
        return self._exists(self.check_key(key))

    def delete(self, key: str) -> None:
        self._delete(self.check_key(key))

    def keys(self, prefix: str = "") -> list[str]:
        """Keys of the blobs starting with `prefix`, sorted."""
        return sorted(self._list(prefix))

    def url(self, key: str, *, expires_in: timedelta = timedelta(hours=24)) -> str:
        return self._url(self.check_key(key), expires_in)

    @abstractmethod
    def create(self) -> list[str]: ...

    @abstractmethod
    def _put(self, key: str, data: bytes, content_type: str) -> None: ...

    @abstractmethod
    def _get(self, key: str) -> bytes: ...

    @abstractmethod
    def _exists(self, key: str) -> bool: ...

    @abstractmethod
    def _delete(self, key: str) -> None: ...

    @abstractmethod
    def _list(self, prefix: str) -> Iterable[str]: ...

    @abstractmethod
    def _url(self, key: str, expires_in: timedelta) -> str: ...


# ---------------------------------------------------------------- queues
STAGE_QUEUES = ("fanout", "analysis", "packaging", "delivery")


@dataclass(frozen=True)
class Message:
    """A received message. `receipt` acknowledges this receive only; `receive_count`
    counts every receive so far (this one included)."""

    id: str
    body: dict[str, Any]
    receipt: str
    receive_count: int
    reason: str | None = None  # why it was dead-lettered, when it was moved there on purpose


@dataclass(frozen=True)
class QueueDepth:
    visible: int
    in_flight: int
    dead_letters: int


class Queue(ABC):
    """The stage queues, consumed at least once. A message not acknowledged within its
    visibility timeout is received again; after `max_receives` receives it moves to
    the queue's dead-letter queue."""

    def __init__(self, names: Sequence[str] = STAGE_QUEUES, *, max_receives: int = 5,
                 visibility_timeout: int = 300) -> None:
        self.names = tuple(names)
        self.max_receives = max_receives
        self.visibility_timeout = visibility_timeout

    def check_name(self, queue: str) -> str:
        if queue not in self.names:
            raise InvalidInput(f"unknown queue {queue!r}; queues: {list(self.names)}",
                               field="queue")
        return queue

    def send(self, queue: str, body: Mapping[str, Any], *, delay_seconds: int = 0) -> str:
        return self._send(self.check_name(queue), dict(body), delay_seconds)

    def receive(self, queue: str, *, max_messages: int = 10, visibility_timeout: int | None = None,
                wait_seconds: float = 0) -> list[Message]:
        timeout = self.visibility_timeout if visibility_timeout is None else visibility_timeout
        return self._receive(self.check_name(queue), max(1, min(max_messages, 10)), timeout,
                             wait_seconds)

    def ack(self, queue: str, message: Message) -> None:
        self._ack(self.check_name(queue), message.receipt)

    def release(self, queue: str, message: Message, *, delay_seconds: int = 0) -> None:
        """Give a message back before its visibility timeout (to retry it sooner)."""
        self._release(self.check_name(queue), message.receipt, delay_seconds)

    def dead_letter(self, queue: str, message: Message, reason: str) -> None:
        """Move a received message to the dead-letter queue now, with the reason (for a
        message no retry can help, e.g. a malformed one)."""
        self._dead_letter(self.check_name(queue), message, reason[:1000])

    def depth(self, queue: str) -> QueueDepth:
        return self._depth(self.check_name(queue))

    def dead_letters(self, queue: str, *, max_messages: int = 10) -> list[Message]:
        """Receive from the queue's dead-letter queue (for inspection or redrive)."""
        return self._dead_letters(self.check_name(queue), max(1, min(max_messages, 10)))

    @abstractmethod
    def create(self) -> list[str]: ...

    @abstractmethod
    def _send(self, queue: str, body: dict[str, Any], delay_seconds: int) -> str: ...

    @abstractmethod
    def _receive(self, queue: str, max_messages: int, visibility_timeout: int,
                 wait_seconds: float) -> list[Message]: ...

    @abstractmethod
    def _ack(self, queue: str, receipt: str) -> None: ...

    @abstractmethod
    def _release(self, queue: str, receipt: str, delay_seconds: int) -> None: ...

    @abstractmethod
    def _dead_letter(self, queue: str, message: Message, reason: str) -> None: ...

    @abstractmethod
    def _depth(self, queue: str) -> QueueDepth: ...

    @abstractmethod
    def _dead_letters(self, queue: str, max_messages: int) -> list[Message]: ...
