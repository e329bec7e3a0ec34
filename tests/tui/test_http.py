"""Once over real HTTP: `metric-stream serve` on 127.0.0.1 with an admin key, the
console on an HttpClient — list the KPIs, open a job; a wrong key is told plainly."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from textual.widgets import DataTable

from metric_stream_tui.client import HttpClient
from metric_stream_tui.screens.job_detail import JobDetailScreen
from metric_stream_tui.screens.kpis import KpisScreen
from tests.tui.conftest import PARTIAL, SIZE, Console, settle

ADMIN_KEY = "tui-admin-key-for-tests"


@pytest.fixture
def server(console: Console) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "METRIC_STREAM_HOME": str(Path("home").resolve()),
           "METRIC_STREAM_ADMIN_KEY": ADMIN_KEY}
    process = subprocess.Popen(
        [sys.executable, "-m", "metric_stream.cli.main", "serve", "--port", str(port),
         "--workers", "1", "--no-workers"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.communicate(timeout=30)


@pytest.mark.anyio
async def test_the_console_over_http(console: Console, server: str) -> None:
    async with console.run(HttpClient(server, ADMIN_KEY), start="kpis") as (app, pilot):
        assert app.screen.query_one("#target").render().plain == server  # type: ignore[attr-defined]
        assert isinstance(app.screen, KpisScreen)
        assert app.screen.table.row_count == 7
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        detail = app.screen
        assert isinstance(detail, JobDetailScreen) and detail.trace_id == PARTIAL
        assert "NodeApiError" in str(detail.query_one("#error").render())
        assert detail.query_one("#deliveries", DataTable).row_count == 2
        assert detail.report_location() == f"https://reports.example.com/api/documents/{PARTIAL}"

    wrong = console.app(HttpClient(server, "not-the-key"), start="jobs")
    async with wrong.run_test(size=SIZE) as pilot:
        await settle(pilot)
        messages = [str(n.message) for n in wrong._notifications]
        assert any("authentication failed" in m and "METRIC_STREAM_ADMIN_KEY" in m
                   for m in messages)
