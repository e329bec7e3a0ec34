"""A storage call that fails leaves nothing half-written and says what went wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from metric_stream.bootstrap import build_services
from metric_stream.errors import StorageUnavailable
from metric_stream.models import DataPoint
from metric_stream.settings import Settings


def test_a_full_database_refuses_the_whole_batch_and_keeps_what_was_there(
        tmp_path: Path) -> None:
    services = build_services(Settings(home=tmp_path / "home"))
    services.init()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    services.timeseries.append([DataPoint(kpi_id="btc", timestamp=start, value=1.0)])
    conn = services.records.db.connection()  # type: ignore[attr-defined]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own 'disk full' from here on
    big = {"blob": "x" * 50_000}
    batch = [DataPoint(kpi_id=f"k{i}", timestamp=start, value=float(i), metadata=big)
             for i in range(20)]
    with pytest.raises(StorageUnavailable, match="full"):
        services.timeseries.append(batch)
    conn.execute("PRAGMA max_page_count = 1073741823")
    assert all(services.timeseries.points(f"k{i}") == [] for i in range(20))
    assert [p.value for p in services.timeseries.points("btc")] == [1.0]
    services.timeseries.append([DataPoint(kpi_id="btc", timestamp=start + timedelta(days=1),
                                          value=2.0)])
    assert len(services.timeseries.points("btc")) == 2


def test_an_unusable_home_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    services = build_services(Settings(home=blocker / "home"))
    with pytest.raises(StorageUnavailable, match="cannot open the database"):
        services.init()
