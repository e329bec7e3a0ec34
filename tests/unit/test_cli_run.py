"""`metric-stream run`: a whole cycle from the command line, its summary and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from metric_stream.bootstrap import build_services
from metric_stream.models import CollectorSource, JobStatus, KpiDefinition, N8nSource
from metric_stream.settings import Settings
from tests.cli_support import run_cli as run


def test_run_demo_completes_a_job_with_no_network(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    code, out, _ = run(capsys, "--home", str(tmp_path / "h"), "run", "--demo")
    assert code == 0, out
    assert out.startswith("DEMO")
    assert "12/12 collected, 0 failed" in out and "COMPLETE" in out and "(DEMO)" in out
    assert "analysis: " in out and "top movers (1 day): demo-" in out
    demo = build_services(Settings(home=tmp_path / "h" / "demo"))
    (job,) = demo.jobs.list()
    assert job.demo and job.status is JobStatus.COMPLETE
    assert len(demo.timeseries.points(job.kpi_ids[0])) == 366  # a year of history + today
    assert build_services(Settings(home=tmp_path / "h")).registry.kpis.ids() == []  # untouched
    code, out, _ = run(capsys, "--home", str(tmp_path / "h"), "run", "--demo")
    assert code == 0 and "history points" not in out  # seeded once
    assert len(demo.jobs.list()) == 2


def test_run_json_and_kpi_selection(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run(capsys, "--home", str(tmp_path / "h"), "run", "--demo")
    code, out, err = run(capsys, "--home", str(tmp_path / "h"), "run", "--demo", "--json",
                         "--kpis", "demo-btc-price-usd")
    assert code == 0
    body = json.loads(out)
    assert body["status"] == "complete" and body["demo"] is True
    assert body["kpis"] == {"total": 1, "collected": 1, "failed": {}}
    assert set(body["stages"]) == {"collecting", "fanout", "analysing", "packaging",
                                   "delivering"}
    assert "DEMO" in err


def test_run_with_an_unknown_kpi_is_a_usage_error(capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    code, _, err = run(capsys, "--home", str(tmp_path / "h"), "run", "--demo", "--kpis", "ghost")
    assert code == 2 and "not in the registry" in err and "Traceback" not in err


def test_a_partial_job_exits_3_and_names_what_failed(capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path) -> None:
    services = build_services(Settings(home=tmp_path / "h"))
    services.init()
    services.registry.kpis.create(KpiDefinition(
        id="demo-ok", name="ok", kpi_type="price",
        source=CollectorSource(collector="demo", params={"kind": "btc-price"})))
    services.registry.kpis.create(KpiDefinition(
        id="n8n-refused", name="refused", kpi_type="price",
        source=N8nSource(webhook_url="http://169.254.169.254/hook")))
    code, out, _ = run(capsys, "--home", str(tmp_path / "h"), "run")
    assert code == 3, out
    assert "PARTIAL" in out and "1/2 collected, 1 failed" in out
    assert "n8n-refused: the n8n webhook of n8n-refused could not be triggered" in out
    assert "metadata" in out
