"""CSV backfill on every backend: good rows in, bad rows refused with row and reason,
unusable files refused whole, and a re-import that adds nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from metric_stream.bootstrap import Services
from metric_stream.errors import InvalidInput, NotFound, PayloadTooLarge, StorageError
from metric_stream.models.kpi import CollectorSource, KpiDefinition
from metric_stream.models.timeseries import DataPoint, ImportState
from metric_stream.services.imports import LINE_CHARS, MAX_BYTES, import_csv

KPI = "btc-price-usd"
# parsing-only behaviour (refused before any storage call): one backend is enough
embedded_only = pytest.mark.parametrize("services", ["embedded"], indirect=True)


@pytest.fixture
def kpi(services: Services) -> str:
    services.registry.kpis.create(KpiDefinition(
        id=KPI, name="BTC price", kpi_type="price",
        source=CollectorSource(collector="demo", params={"kind": "btc-price"})))
    return KPI


def csv(*rows: str, header: str = "timestamp,value,metadata") -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def day(n: int) -> datetime:
    return datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=n)


def nothing_stored(services: Services) -> bool:
    return not services.timeseries.points(KPI) and not services.imports.statuses(KPI)


def test_a_valid_file_is_imported_whole(services: Services, kpi: str) -> None:
    data = csv(
        "2025-01-01T00:00:00Z,93000.5,",
        "2025-01-02T01:00:00+01:00,94000,{}",  # 00:00 UTC
        '2025-01-03 00:00:00.250000+00:00,-1.5e3,"{""note"": ""fixed by hand"", ""n"": 2}"',
        "",  # blank lines are skipped
        "  2025-01-04T00:00:00-05:00 , 0 ",
    )
    status = import_csv(services, kpi, data, filename="btc.csv")
    assert (status.rows_total, status.rows_imported, status.rows_duplicate,
            status.rows_refused) == (4, 4, 0, 0)
    assert status.state is ImportState.COMPLETE
    assert status.filename == "btc.csv"
    assert status.import_id.startswith("imp_20261129T060000_")
    assert services.imports.status(kpi, status.import_id) == status
    assert services.imports.errors(kpi, status.import_id) == []
    points = services.timeseries.points(kpi)
    assert [(p.timestamp, p.value) for p in points] == [
        (day(0), 93000.5), (day(1), 94000.0),
        (day(2) + timedelta(milliseconds=250), -1500.0),
        (day(3) + timedelta(hours=5), 0.0)]
    assert points[2].metadata == {"note": "fixed by hand", "n": 2}
    assert points[0].metadata == {}
    assert {p.source for p in points} == {f"import:{status.import_id}"}


def test_bad_rows_are_refused_with_row_and_reason_while_good_rows_go_in(
        services: Services, kpi: str) -> None:
    services.timeseries.append_many([DataPoint(kpi_id=kpi, timestamp=day(20), value=1.0)])
    data = csv(
        "2025-01-01T00:00:00Z,1,",                  # row 2: good
        "2025-01-02T00:00:00,2,",                   # row 3: no zone
        "2025-01-03T00:00:00Z,12abc,",              # row 4: bad number
        "2025-01-04T00:00:00Z,NaN,",                # row 5: NaN
        "2025-01-05T00:00:00Z,-inf,",               # row 6: infinity
        "2025-01-06T00:00:00Z,,",                   # row 7: empty value
        '2025-01-07T00:00:00Z,7,"{""a"": }"',       # row 8: bad metadata JSON
        "2025-01-08T00:00:00Z,8,[1]",               # row 9: metadata not an object
        "2025-01-10T00:00:00Z,10,",                 # row 10: good
        "2025-01-09T00:00:00Z,9,",                  # row 11: out of order
        "2025-01-10T00:00:00+00:00,10,",            # row 12: repeats row 10
        "2025-01-21T00:00:00Z,99,",                 # row 13: another value is stored
        "yesterday,1,",                             # row 14: not a timestamp
        "2025-01-22T00:00:00Z,1,{},extra",          # row 15: too many columns
        "2025-01-23T00:00:00Z",                     # row 16: no value at all
        "2025-01-24T00:00:00Z,24,",                 # row 17: good
    )
    status = import_csv(services, kpi, data)
    assert (status.rows_total, status.rows_imported, status.rows_duplicate,
            status.rows_refused) == (16, 3, 0, 13)
    assert status.state is ImportState.COMPLETE
    errors = {e.row: e for e in services.imports.errors(kpi, status.import_id)}
    expected = {
        3: "timezone", 4: "'12abc' is not a number", 5: "finite number, not NaN",
        6: "finite number, not -inf", 7: "is empty", 8: "metadata: is not valid JSON",
        9: "metadata: must be a JSON object", 11: "not after row 10's timestamp",
        12: "repeats row 10", 13: "another value is stored for this timestamp",
        14: "timestamp: must be an ISO 8601", 15: "has 4 columns", 16: "value: is missing",
    }
    assert sorted(errors) == sorted(expected)
    for row, reason in expected.items():
        assert reason in errors[row].reason, (row, errors[row].reason)
    assert errors[3].timestamp == "2025-01-02T00:00:00"
    assert errors[3].line == "2025-01-02T00:00:00,2,"
    assert errors[13].kpi_id == kpi
    assert errors[13].import_id == status.import_id
    points = services.timeseries.points(kpi)
    assert [(p.timestamp, p.value) for p in points] == [
        (day(0), 1.0), (day(9), 10.0), (day(20), 1.0), (day(23), 24.0)]


def test_reimporting_the_same_file_adds_nothing(services: Services, kpi: str) -> None:
    data = csv(*(f"{day(n):%Y-%m-%dT%H:%M:%SZ},{100 + n}," for n in range(30)),
               "2025-03-01T00:00:00,1,")  # one refused row
    first = import_csv(services, kpi, data)
    second = import_csv(services, kpi, data)
    assert (first.rows_imported, first.rows_duplicate, first.rows_refused) == (30, 0, 1)
    assert (second.rows_imported, second.rows_duplicate, second.rows_refused) == (0, 30, 1)
    assert second.import_id != first.import_id
    assert len(services.timeseries.points(kpi)) == 30
    assert {s.import_id for s in services.imports.statuses(kpi)} == {
        first.import_id, second.import_id}
    assert [e.row for e in services.imports.errors(kpi, second.import_id)] == [32]


@embedded_only
def test_an_unknown_kpi_is_not_found_and_nothing_is_stored(
        services: Services, kpi: str) -> None:
    with pytest.raises(NotFound) as caught:
        import_csv(services, "eth-price-usd", csv("2025-01-01T00:00:00Z,1,"))
    assert caught.value.field == "kpiId"
    assert "eth-price-usd" in caught.value.message
    assert not services.timeseries.points("eth-price-usd")
    assert not services.imports.statuses("eth-price-usd")


@embedded_only
def test_an_oversized_file_is_refused_whole(services: Services, kpi: str) -> None:
    row = b"2025-01-01T00:00:00Z,1,\n"
    data = csv() + row * (MAX_BYTES // len(row) + 1)
    assert len(data) > MAX_BYTES
    with pytest.raises(PayloadTooLarge, match="10 MB"):
        import_csv(services, kpi, data)
    assert nothing_stored(services)


@embedded_only
@pytest.mark.parametrize(("data", "message"), [
    (b"", "is empty"),
    (b"time,price\n2025-01-01T00:00:00Z,1\n", "must start with the header row"),
    (b"2025-01-01T00:00:00Z,1,\n2025-01-02T00:00:00Z,2,\n", "must start with the header row"),
    (b"timestamp,value,metadata\n2025-01-01T00:00:00Z,1,\xff\n", "is not UTF-8"),
    (b"timestamp,value,metadata\n2025-01-01T00:00:00Z,1,\n2025-01-02T00:00:00Z,2,"
     + b"x" * 200_000 + b"\n", "row 3 is not readable CSV"),
])
def test_an_unusable_file_is_refused_whole(services: Services, kpi: str, data: bytes,
                                           message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        import_csv(services, kpi, data)
    assert caught.value.field == "file"
    assert nothing_stored(services)


@embedded_only
def test_header_without_metadata_and_a_bom_are_accepted(services: Services, kpi: str) -> None:
    data = "\ufeffTimestamp,Value\r\n2025-01-01T00:00:00Z,1\r\n2025-01-02T00:00:00Z,2,{}\r\n"
    status = import_csv(services, kpi, data.encode())
    assert (status.rows_imported, status.rows_refused) == (1, 1)
    [error] = services.imports.errors(kpi, status.import_id)
    assert "has 3 columns; the header names 2" in error.reason


@embedded_only
def test_a_refused_rows_raw_line_is_kept_truncated(services: Services, kpi: str) -> None:
    long_meta = '"{""note"": ""' + "x" * 3000 + '""'  # unterminated object
    status = import_csv(services, kpi, csv(f"2025-01-01T00:00:00Z,1,{long_meta}"))
    [error] = services.imports.errors(kpi, status.import_id)
    assert error.row == 2
    assert error.line.startswith("2025-01-01T00:00:00Z,1,")
    assert len(error.line) == LINE_CHARS


def test_a_large_file_keeps_every_row(
        services: Services, kpi: str, request: pytest.FixtureRequest) -> None:
    rows = 200 if "aws" in request.node.name else 5_000
    start = datetime(2020, 1, 1, tzinfo=UTC)
    data = csv(*(f"{start + timedelta(minutes=n):%Y-%m-%dT%H:%M:%SZ},{n}," for n in range(rows)))
    status = import_csv(services, kpi, data)
    assert (status.rows_total, status.rows_imported, status.rows_refused) == (rows, rows, 0)
    points = services.timeseries.points(kpi)
    assert len(points) == rows
    assert points[-1].value == rows - 1


@embedded_only
def test_a_storage_failure_leaves_a_failed_status(
        services: Services, kpi: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_: object) -> None:
        raise StorageError("disk full")

    monkeypatch.setattr(services.timeseries, "append_many", broken)
    with pytest.raises(StorageError):
        import_csv(services, kpi, csv("2025-01-01T00:00:00Z,1,"))
    [status] = services.imports.statuses(kpi)
    assert status.state is ImportState.FAILED
    assert status.message is not None
    assert "disk full" in status.message
    assert status.finished_at is not None
