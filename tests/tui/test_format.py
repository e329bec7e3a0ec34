"""How values read on screen."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from metric_stream_tui.format import compact, duration, job_state, number, relative, size
from metric_stream_tui.screens.kpi_detail import nice_ticks


@pytest.mark.parametrize(("seconds", "text"), [
    (0.4, "400 ms"), (9.5, "9.5 s"), (41.5, "42 s"), (95.2, "1 min 35 s"),
    (7260, "2 h 01 min"), (3 * 86400 + 7200, "3 d 2 h"), (None, "—"),
])
def test_duration(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text


def test_numbers_sizes_and_times() -> None:
    assert [number(v) for v in (62505.3, 1234.5, 0.0442, -0.03, 110_000, 0, None)] == [
        "62,505", "1,234.50", "0.0442", "-0.03", "110,000", "0", "—"]
    assert [compact(v) for v in (75_000, 5500, 2.5e12, 0.04, 1.5e6)] == [
        "75k", "5500", "2.5T", "0.04", "1.5M"]
    assert [size(v) for v in (512, 2_359_296, None)] == ["512 B", "2.2 MB", "—"]
    now = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)
    assert relative("2026-11-30T06:00:00Z", now) == "in 20 h 30 min"
    assert relative("2026-11-29T09:25:00Z", now) == "5 min ago"


def test_a_job_said_plainly() -> None:
    counts = {"collected": 11, "failed": 1, "timed_out": 0, "pending": 0}
    assert job_state({"status": "partial", "kpiCounts": counts}) == \
        "partial — 1 of 12 KPIs missing"
    assert job_state({"status": "analysing", "kpiCounts": counts}) == "analysing…"
    assert job_state({"status": "complete", "kpiCounts": counts}) == "complete"


def test_round_axis_ticks() -> None:
    assert nice_ticks(50_019, 78_139) == [55_000, 60_000, 65_000, 70_000, 75_000]
    assert nice_ticks(-0.0085, 0.0849) == [0.0, 0.02, 0.04, 0.06, 0.08]
    assert nice_ticks(3.0, 3.0) == [3.0]
