"""CSV backfill of one KPI's history (`timestamp,value,metadata`), the way an operator
brings in years of points collected elsewhere.

A file is all-or-nothing only where it is unusable as a whole (too large, not UTF-8,
no header, unknown KPI): then nothing is stored. Otherwise every good row is imported
and every bad one is refused and recorded with its row number and reason, so that the
operator can fix those rows and import the file again: rows already stored with the
same value count as duplicates, so a re-import adds nothing twice.

Values are read here as plain decimal numbers (no NaN, infinity or `1_000`); each row
then becomes a `DataPoint` through the data-contract model's own validation, so the
timestamp rules and messages are the ingestion path's. The figure to hold is 100,000
rows in under 3 s on the embedded backend (`bench/csv_import.py`).
"""

from __future__ import annotations

import csv
import gc
import io
import json
import math
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from pydantic import ValidationError

from metric_stream.bootstrap import Services
from metric_stream.errors import InvalidInput, NotFound, PayloadTooLarge
from metric_stream.models.base import MAX_MAGNITUDE, MIN_MAGNITUDE, problems_of
from metric_stream.models.timeseries import DataPoint, ImportRowError, ImportState, ImportStatus

MAX_BYTES = 10 * 1024 * 1024
MAX_METADATA_CHARS = 10_000
LINE_CHARS = 500  # of a refused row's raw text kept in its error record
COLUMNS = ("timestamp", "value", "metadata")

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_NOT_FINITE = frozenset({"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity",
                         "+infinity", "-infinity"})
_MAX_INT = 10 ** 38  # DynamoDB's 38 digits


class _Row(NamedTuple):
    number: int  # the header is row 1
    timestamp: str
    start: int  # the record's physical lines in the file: [start, end)
    end: int


class _Rows:
    """The file's records (`csv.reader` over its physical lines, kept to quote a refused
    row's raw text, which is rebuilt only for the rows refused)."""

    def __init__(self, text: str) -> None:
        self.lines = io.StringIO(text, newline="").readlines()
        self.reader = csv.reader(self.lines, strict=False)

    def raw(self, row: _Row) -> str:
        return "".join(self.lines[row.start:row.end]).rstrip("\r\n")


@dataclass
class _Checked:
    """The file's rows, checked: the points to store and the rows refused so far."""

    total: int = 0
    points: list[DataPoint] = field(default_factory=list)
    refused: list[ImportRowError] = field(default_factory=list)
    rows_of: dict[datetime, _Row] = field(default_factory=dict)  # valid rows by timestamp


def new_import_id(now: datetime) -> str:
    """`imp_20261129T060000_3fa9c1`: sorts by start time (the error records rely on it)."""
    return f"imp_{now.astimezone(UTC):%Y%m%dT%H%M%S}_{secrets.token_hex(3)}"


def import_csv(services: Services, kpi_id: str, data: bytes, *,
               filename: str | None = None) -> ImportStatus:
    """Import a CSV file of one KPI's points; returns the import's stored status."""
    if len(data) > MAX_BYTES:
        raise PayloadTooLarge(f"is {len(data):,} bytes; the limit is {MAX_BYTES:,} (10 MB)",
                              field="file")
    if kpi_id not in services.registry.kpis.resolve([kpi_id]):
        raise NotFound(f"KPI {kpi_id!r} is not in the registry", field="kpiId")
    rows = _Rows(_decode(data))
    width = _read_header(rows.reader)

    now = services.clock.now()
    import_id = new_import_id(now)
    with _gc_paused():
        return _import(services, kpi_id, filename, rows, width, import_id, now)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: a large file makes hundreds of thousands of
    short-lived objects and no cycles, and the collector's passes over them cost ~30%."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _import(services: Services, kpi_id: str, filename: str | None, rows: _Rows, width: int,
            import_id: str, now: datetime) -> ImportStatus:
    checked = _check_rows(rows, kpi_id, width, import_id, now)  # raises before storing
    status = ImportStatus(kpi_id=kpi_id, import_id=import_id, filename=filename,
                          started_at=now, rows_total=checked.total)
    services.imports.put_status(status)
    refused = checked.refused
    try:
        outcome = services.timeseries.append_many(checked.points)
        refused += [_error(rows, checked.rows_of[p.timestamp],
                           "another value is stored for this timestamp", kpi_id, import_id, now)
                    for p in outcome.conflicts]
        refused.sort(key=lambda e: e.row)
        services.imports.add_errors(refused, now)
    except Exception as exc:
        services.imports.put_status(status.model_copy(update={
            "state": ImportState.FAILED, "finished_at": services.clock.now(),
            "message": f"stopped by a storage failure: {exc}"[:1000]}))
        raise
    done = status.model_copy(update={
        "state": ImportState.COMPLETE,
        "rows_imported": outcome.stored,
        "rows_duplicate": outcome.duplicates,
        "rows_refused": len(refused),
        "message": f"{len(refused)} row(s) refused" if refused else None,
        "finished_at": services.clock.now(),
    })
    services.imports.put_status(done)
    return done


def _check_rows(rows: _Rows, kpi_id: str, width: int, import_id: str,
                now: datetime) -> _Checked:
    checked = _Checked()
    source = f"import:{import_id}"
    previous: _Row | None = None
    previous_at: datetime | None = None
    reader = rows.reader
    number, end = 1, reader.line_num
    try:
        for record in reader:
            number += 1
            start, end = end, reader.line_num
            if not record or not "".join(record).strip():
                continue  # a blank line
            checked.total += 1
            timestamp = record[0].strip()
            point, reason = _point(kpi_id, record, timestamp, width, source)
            row = _Row(number, timestamp, start, end)
            if point is not None:
                moment = point.timestamp
                earlier = checked.rows_of.get(moment)
                if earlier is not None:
                    reason = f"timestamp repeats row {earlier.number}"
                elif previous is not None and previous_at is not None and moment < previous_at:
                    reason = (f"timestamp is not after row {previous.number}'s timestamp "
                              f"({previous.timestamp}); rows must be in chronological order")
            if point is None or reason:
                checked.refused.append(_error(rows, row, reason, kpi_id, import_id, now))
                continue
            checked.rows_of[point.timestamp] = previous = row
            previous_at = point.timestamp
            checked.points.append(point)
    except csv.Error as exc:
        raise InvalidInput(f"row {number + 1} is not readable CSV: {exc}; nothing was "
                           "imported", field="file") from None
    return checked


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"is not UTF-8 text (invalid byte at offset {exc.start}); "
                           "save the CSV as UTF-8", field="file") from None


def _read_header(reader: Iterator[list[str]]) -> int:
    """Check the header row; returns how many columns a row may have (2 or 3)."""
    expected = ",".join(COLUMNS)
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInput(f"is empty; it needs the header row {expected}",
                           field="file") from None
    except csv.Error as exc:
        raise InvalidInput(f"is not readable CSV: {exc}", field="file") from None
    names = [h.strip().lower() for h in header]
    if names in (list(COLUMNS[:2]), list(COLUMNS)):
        return len(names)
    found = ",".join(header)[:200]
    raise InvalidInput(f"must start with the header row {expected} (metadata optional); "
                       f"the first row is {found!r}", field="file")


def _error(rows: _Rows, row: _Row, reason: str, kpi_id: str, import_id: str,
           now: datetime) -> ImportRowError:
    return ImportRowError.model_construct(
        kpi_id=kpi_id, import_id=import_id, row=row.number, timestamp=row.timestamp[:200],
        reason=reason, line=rows.raw(row)[:LINE_CHARS], recorded_at=now)


def _point(kpi_id: str, record: list[str], timestamp: str, width: int,
           source: str) -> tuple[DataPoint | None, str]:
    """The row's point, or None and the reason it is refused."""
    if len(record) > width:
        return None, (f"has {len(record)} columns; the header names {width} "
                      "(quote a metadata object that contains commas)")
    if len(record) < 2:
        return None, "value: is missing"
    problems: list[str] = []
    value = _number(record[1].strip(), problems)
    metadata = _metadata(record[2].strip(), problems) if len(record) > 2 else {}
    try:
        point = DataPoint(kpi_id=kpi_id, timestamp=timestamp, source=source,
                          value=0.0 if value is None else value, metadata=metadata or {})
    except ValidationError as exc:
        problems[:0] = [str(p) for p in problems_of(exc)]
    if problems:
        return None, "; ".join(problems)
    return point, ""


def _number(text: str, problems: list[str]) -> float | None:
    if not _NUMBER.fullmatch(text):
        if not text:
            problems.append("value: is empty; a number is required")
        elif text.lower() in _NOT_FINITE:
            problems.append(f"value: must be a finite number, not {text}")
        else:
            problems.append(f"value: {text[:50]!r} is not a number")
        return None
    value = float(text)
    magnitude = abs(value)
    if not math.isfinite(value) or magnitude > MAX_MAGNITUDE or (
            magnitude and magnitude < MIN_MAGNITUDE):
        problems.append("value: must be 0 or have a magnitude between 1e-100 and 1e100")
        return None
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _metadata(text: str, problems: list[str]) -> dict[str, Any] | None:
    if not text:
        return {}
    if len(text) > MAX_METADATA_CHARS:
        problems.append(f"metadata: is {len(text):,} characters; the limit is "
                        f"{MAX_METADATA_CHARS:,}")
        return None
    try:
        parsed = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:  # JSONDecodeError included
        problems.append(f"metadata: is not valid JSON ({exc})")
        return None
    if not isinstance(parsed, dict):
        problems.append(f"metadata: must be a JSON object, not {type(parsed).__name__}")
        return None
    if not _numbers_in_range(parsed):
        problems.append("metadata: numbers must be 0 or have a magnitude between 1e-100 "
                        "and 1e100 (integers: at most 38 digits)")
        return None
    return parsed


def _numbers_in_range(value: Any) -> bool:
    """Every number storable on every backend (DynamoDB keeps 38 digits, 1e-130..1e126)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    if isinstance(value, int):
        return abs(value) < _MAX_INT
    if isinstance(value, float):
        magnitude = abs(value)
        return magnitude <= MAX_MAGNITUDE and not (magnitude and magnitude < MIN_MAGNITUDE)
    if isinstance(value, dict):
        return all(_numbers_in_range(v) for v in value.values())
    if isinstance(value, list):
        return all(_numbers_in_range(v) for v in value)
    return True
