"""The embedded backend's records and queues: one SQLite database in WAL mode.

Safe with many threads (a connection per thread, writers serialised by a
process-wide lock so that they never spin in SQLite's busy handler) and with
several processes at once (`BEGIN IMMEDIATE` plus a busy timeout).
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

from metric_stream.errors import ConditionFailed, StorageUnavailable
from metric_stream.ports import (
    Absent,
    Check,
    Clock,
    Delete,
    Exists,
    Item,
    Key,
    Message,
    Op,
    Put,
    Queue,
    QueueDepth,
    RecordStore,
    Update,
    apply_update,
    epoch,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    body TEXT NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (pk, sk)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_expiry ON records (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS queue_messages (
    id TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    sent_at REAL NOT NULL,
    visible_at REAL NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt TEXT,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS queue_visible ON queue_messages (queue, visible_at);
CREATE INDEX IF NOT EXISTS queue_receipt ON queue_messages (receipt);
"""

_PREFIX_END = "\U0010ffff"
_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


def _process_lock(path: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(path, threading.Lock())


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class Database:
    """One SQLite file: per-thread connections, serialised write transactions."""

    def __init__(self, path: Path) -> None:
        self.path = path.resolve()
        self._local = threading.local()
        self._write_lock = _process_lock(self.path)
        self._ready = False
        self._lock_fd: int | None = None

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Writers of this file, in this process (a thread lock) and across processes
        (flock on a lock file beside it), take turns: the kernel queues waiters, where
        SQLite's own busy handler would poll with growing sleeps."""
        with self._write_lock:
            if self._lock_fd is None:
                self._lock_fd = os.open(self.path.with_suffix(".lock"),
                                        os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
        return conn

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            if not self._ready:
                with self.exclusive():
                    conn.executescript(SCHEMA)
                self._ready = True
        except (sqlite3.Error, OSError) as exc:
            raise StorageUnavailable(f"cannot open the database {self.path}: "
                                     f"{_reason(exc, self.path)}") from exc
        return conn

    def create(self) -> list[str]:
        existed = self.path.exists()
        self.connection()
        return [] if existed else [f"SQLite database {self.path}"]

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; rolled back whole on any error."""
        conn = self.connection()
        with self.exclusive():
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StorageUnavailable(f"cannot write to {self.path}: "
                                         f"{_reason(exc, self.path)}") from exc
            try:
                yield conn
            except BaseException:
                _roll_back(conn)
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                _roll_back(conn)
                raise StorageUnavailable(f"cannot write to {self.path}: "
                                         f"{_reason(exc, self.path)}") from exc

    @contextmanager
    def translated(self) -> Iterator[None]:
        """Turn SQLite's own errors (full disk, read-only file) into `StorageUnavailable`."""
        try:
            yield
        except sqlite3.Error as exc:
            raise StorageUnavailable(f"storage error in {self.path}: "
                                     f"{_reason(exc, self.path)}") from exc


_LOW_SPACE = 1 << 20
_FILE_SYSTEM_ERRORS = ("SQLITE_IOERR", "SQLITE_FULL", "SQLITE_CANTOPEN", "SQLITE_READONLY")


def _reason(exc: BaseException, path: Path) -> str:
    """SQLite's reason, with the file system's where SQLite only says "disk I/O error"
    (what it says when the disk fills up while it opens or grows its shared memory)."""
    reason = str(exc)
    name = getattr(exc, "sqlite_errorname", "")
    if not isinstance(exc, OSError) and not name.startswith(_FILE_SYSTEM_ERRORS):
        return reason  # busy, locked, constraint, ...: nothing the file system explains
    try:
        fs = os.statvfs(path.parent)
    except OSError:
        return reason
    if fs.f_flag & os.ST_RDONLY and "read-only" not in reason.lower():
        return f"{reason} (the file system holding it is read-only)"
    free = fs.f_bavail * fs.f_frsize
    if free < _LOW_SPACE and "full" not in reason:
        return f"{reason} (the disk holding it is full: {free // 1024} KiB free)"
    return reason


def _roll_back(conn: sqlite3.Connection) -> None:
    """Undo the open transaction, if any: after a full disk or an I/O error SQLite has
    rolled it back itself, and a second ROLLBACK would raise and hide the real error."""
    if conn.in_transaction:
        with suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


class SqliteRecordStore(RecordStore):
    def __init__(self, database: Database, clock: Clock) -> None:
        super().__init__(clock)
        self.db = database

    def create(self) -> list[str]:
        return self.db.create()

    @staticmethod
    def _item(body: str, expires_at: int | None) -> Item:
        item: Item = json.loads(body)
        if expires_at is not None:
            item["expiresAt"] = expires_at
        return item

    def _get_many(self, keys: Sequence[Key]) -> dict[Key, Item]:
        # One primary-key lookup per key, glued with UNION ALL: SQLite plans a row-value
        # `IN (VALUES ...)` as a full scan of the table.
        found: dict[Key, Item] = {}
        conn = self.db.connection()
        with self.db.translated():
            for i in range(0, len(keys), 200):
                chunk = keys[i:i + 200]
                sql = " UNION ALL ".join(
                    ["SELECT pk, sk, body, expires_at FROM records WHERE pk = ? AND sk = ?"]
                    * len(chunk))
                params = [part for k in chunk for part in (k.pk, k.sk)]
                for pk, sk, body, expires_at in conn.execute(sql, params):
                    found[Key(pk, sk)] = self._item(body, expires_at)
        return found

    def _query(self, pk: str, start: str | None, end: str | None, prefix: str | None,
               limit: int | None, descending: bool) -> list[tuple[str, Item]]:
        where, params = ["pk = ?"], [pk]
        if prefix:
            start = max(start, prefix) if start else prefix
            end = min(end, prefix + _PREFIX_END) if end else prefix + _PREFIX_END
        if start is not None:
            where.append("sk >= ?")
            params.append(start)
        if end is not None:
            where.append("sk <= ?")
            params.append(end)
        sql = (f"SELECT sk, body, expires_at FROM records WHERE {' AND '.join(where)} "  # noqa: S608
               f"ORDER BY sk {'DESC' if descending else 'ASC'}")
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self.db.translated():
            rows = self.db.connection().execute(sql, params).fetchall()
        if not rows:
            return []
        # one JSON array parsed at once: half the time of a `json.loads` per row (a
        # year of points is 365 rows per KPI, read by analysis and by packaging)
        items: list[Item] = json.loads("[" + ",".join(body for _, body, _ in rows) + "]")
        for (_, _, expires_at), item in zip(rows, items, strict=True):
            if expires_at is not None:
                item["expiresAt"] = expires_at
        return [(sk, item) for (sk, _, _), item in zip(rows, items, strict=True)]

    def explain_query(self, pk: str) -> str:
        """SQLite's plan for a partition read (tests check it uses the primary key)."""
        rows = self.db.connection().execute(
            "EXPLAIN QUERY PLAN SELECT sk, body FROM records WHERE pk = ? AND sk >= ? "
            "ORDER BY sk", (pk, "")).fetchall()
        return " ".join(str(r[-1]) for r in rows)

    def _currents(self, conn: sqlite3.Connection, ops: Sequence[Op], now: int
                  ) -> list[Item | None]:
        """The live bodies of the ops' records (None where absent or expired; `{}` where
        the op only needs to know that the record exists), in one statement."""
        keys = [op.key for op in ops]
        sql = " UNION ALL ".join(
            ["SELECT pk, sk, body, expires_at FROM records WHERE pk = ? AND sk = ?"] * len(keys))
        rows = {Key(pk, sk): (body, exp) for pk, sk, body, exp in
                conn.execute(sql, [part for k in keys for part in (k.pk, k.sk)])}
        currents: list[Item | None] = []
        for op in ops:
            row = rows.get(op.key)
            if row is None or (row[1] is not None and row[1] <= now):
                currents.append(None)
            else:
                currents.append(self._item(*row) if self._needs_body(op) else {})
        return currents

    @staticmethod
    def _needs_body(op: Op) -> bool:
        """Whether applying `op` reads the current body (not only whether it exists)."""
        return isinstance(op, Update) or not (
            op.condition is None or isinstance(op.condition, Absent | Exists))

    def _current(self, conn: sqlite3.Connection, key: Key, now: int) -> Item | None:
        row = conn.execute("SELECT body, expires_at FROM records WHERE pk = ? AND sk = ?",
                           (key.pk, key.sk)).fetchone()
        if row is None or (row[1] is not None and row[1] <= now):
            return None
        item: Item = json.loads(row[0])
        if row[1] is not None:
            item["expiresAt"] = row[1]
        return item

    def _write(self, ops: Sequence[Op], now: datetime) -> None:
        moment = epoch(now)
        with self.db.translated(), self.db.writing() as conn:
            currents = self._currents(conn, ops, moment)
            failed = [i for i, (op, item) in enumerate(zip(ops, currents, strict=True))
                      if op.condition is not None and not op.condition.holds(item)]
            if failed:
                raise ConditionFailed(failed)
            rows, gone = [], []
            for op, item in zip(ops, currents, strict=True):
                key = op.key
                if isinstance(op, Put):
                    expires = epoch(op.expires_at) if op.expires_at else None
                    rows.append((key.pk, key.sk, _dumps(op.item), expires))
                elif isinstance(op, Update):
                    expires = item.pop("expiresAt", None) if item else None
                    rows.append((key.pk, key.sk, _dumps(apply_update(item, op)), expires))
                elif isinstance(op, Delete):
                    gone.append((key.pk, key.sk))
                else:
                    assert isinstance(op, Check)
            if rows:  # one statement for the whole batch: ingestion writes 3 rows per callback
                conn.executemany("INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?)", rows)
            if gone:
                conn.executemany("DELETE FROM records WHERE pk = ? AND sk = ?", gone)

    def _put_many(self, puts: Sequence[Put], now: datetime) -> list[bool]:
        moment = epoch(now)
        written: list[bool] = []
        for i in range(0, len(puts), 5000):  # bounded transactions: readers never starve
            with self.db.translated(), self.db.writing() as conn:
                for op in puts[i:i + 5000]:
                    written.append(self._put_one(conn, op, moment))
        return written

    def _put_one(self, conn: sqlite3.Connection, op: Put, now: int) -> bool:
        expires = epoch(op.expires_at) if op.expires_at else None
        row = (op.key.pk, op.key.sk, _dumps(op.item), expires)
        if op.condition is None:
            conn.execute("INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?)", row)
            return True
        if isinstance(op.condition, Absent):  # the bulk-import path: one statement per row
            cursor = conn.execute(
                "INSERT INTO records VALUES (?, ?, ?, ?) ON CONFLICT (pk, sk) DO UPDATE SET "
                "body = excluded.body, expires_at = excluded.expires_at "
                "WHERE records.expires_at IS NOT NULL AND records.expires_at <= ?", (*row, now))
            return cursor.rowcount == 1
        if not op.condition.holds(self._current(conn, op.key, now)):
            return False
        conn.execute("INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?)", row)
        return True

    def _delete_many(self, keys: Sequence[Key]) -> None:
        with self.db.translated(), self.db.writing() as conn:
            conn.executemany("DELETE FROM records WHERE pk = ? AND sk = ?",
                             [(k.pk, k.sk) for k in keys])

    def _purge_expired(self, now: datetime) -> int:
        with self.db.translated(), self.db.writing() as conn:
            cursor = conn.execute(
                "DELETE FROM records WHERE expires_at IS NOT NULL AND expires_at <= ?",
                (epoch(now),))
            return cursor.rowcount

    def scrub(self) -> bool:
        """VACUUM rewrites the file without its free pages; the checkpoints empty the
        write-ahead log, whose old frames hold former versions of pages."""
        conn = self.db.connection()
        with self.db.translated(), self.db.exclusive():
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("VACUUM")
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return not busy


class SqliteQueue(Queue):
    """Stage queues as rows: a receive hides a row until its visibility deadline; a row
    received `max_receives` times moves to `{queue}-dlq` on its next receive."""

    _POLL_S = 0.05

    def __init__(self, database: Database, names: Sequence[str], *, max_receives: int = 5,
                 visibility_timeout: int = 300) -> None:
        super().__init__(names, max_receives=max_receives, visibility_timeout=visibility_timeout)
        self.db = database

    def create(self) -> list[str]:
        return self.db.create()

    def _send(self, queue: str, body: dict[str, Any], delay_seconds: int) -> str:
        message_id = uuid.uuid4().hex
        now = time.time()
        with self.db.translated(), self.db.writing() as conn:
            conn.execute(
                "INSERT INTO queue_messages (id, queue, body, sent_at, visible_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (message_id, queue, _dumps(body), now, now + delay_seconds))
        return message_id

    def _receive(self, queue: str, max_messages: int, visibility_timeout: int,
                 wait_seconds: float) -> list[Message]:
        deadline = time.monotonic() + wait_seconds
        while True:
            messages = self._take(queue, max_messages, visibility_timeout, dead_letter=True)
            if messages or time.monotonic() >= deadline:
                return messages
            time.sleep(self._POLL_S)

    def _take(self, queue: str, max_messages: int, visibility_timeout: int, *,
              dead_letter: bool) -> list[Message]:
        now = time.time()
        taken: list[Message] = []
        with self.db.translated():  # an idle poll reads only: it never takes the write lock
            ready = self.db.connection().execute(
                "SELECT 1 FROM queue_messages WHERE queue = ? AND visible_at <= ? LIMIT 1",
                (queue, now)).fetchone()
        if ready is None:
            return taken
        with self.db.translated(), self.db.writing() as conn:
            rows = conn.execute(
                "SELECT id, body, receive_count, reason FROM queue_messages WHERE queue = ? "
                "AND visible_at <= ? ORDER BY visible_at, sent_at LIMIT ?",
                (queue, now, max_messages * 4)).fetchall()
            for message_id, body, count, reason in rows:
                if dead_letter and count >= self.max_receives:
                    conn.execute(
                        "UPDATE queue_messages SET queue = ?, receive_count = 0, visible_at = ?, "
                        "receipt = NULL WHERE id = ?", (f"{queue}-dlq", now, message_id))
                    continue
                if len(taken) == max_messages:
                    break
                receipt = uuid.uuid4().hex
                conn.execute(
                    "UPDATE queue_messages SET receive_count = receive_count + 1, "
                    "visible_at = ?, receipt = ? WHERE id = ?",
                    (now + visibility_timeout, receipt, message_id))
                taken.append(Message(message_id, json.loads(body), receipt, count + 1, reason))
        return taken

    def _ack(self, queue: str, receipt: str) -> None:
        with self.db.translated(), self.db.writing() as conn:
            conn.execute("DELETE FROM queue_messages WHERE receipt = ? AND queue IN (?, ?)",
                         (receipt, queue, f"{queue}-dlq"))

    def _release(self, queue: str, receipt: str, delay_seconds: int) -> None:
        with self.db.translated(), self.db.writing() as conn:
            conn.execute("UPDATE queue_messages SET visible_at = ? WHERE receipt = ? AND queue = ?",
                         (time.time() + delay_seconds, receipt, queue))

    def _dead_letter(self, queue: str, message: Message, reason: str) -> None:
        with self.db.translated(), self.db.writing() as conn:
            conn.execute(
                "UPDATE queue_messages SET queue = ?, receive_count = 0, visible_at = ?, "
                "receipt = NULL, reason = ? WHERE receipt = ? AND queue = ?",
                (f"{queue}-dlq", time.time(), reason, message.receipt, queue))

    def _depth(self, queue: str) -> QueueDepth:
        now = time.time()
        with self.db.translated():
            visible, in_flight, dead = self.db.connection().execute(
                "SELECT "
                "COALESCE(SUM(queue = ? AND visible_at <= ?), 0), "
                "COALESCE(SUM(queue = ? AND visible_at > ? AND receive_count > 0), 0), "
                "COALESCE(SUM(queue = ?), 0) FROM queue_messages WHERE queue IN (?, ?)",
                (queue, now, queue, now, f"{queue}-dlq", queue, f"{queue}-dlq")).fetchone()
        return QueueDepth(int(visible), int(in_flight), int(dead))

    def _dead_letters(self, queue: str, max_messages: int) -> list[Message]:
        return self._take(f"{queue}-dlq", max_messages, 30, dead_letter=False)
