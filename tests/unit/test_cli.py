"""The command line: help, version, init, seeding, and clear errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from metric_stream import __version__
from metric_stream.bootstrap import build_services
from metric_stream.settings import Settings
from tests.cli_support import run_cli as run

SEED = [
    {"id": "btc-price", "name": "BTC price", "kpiType": "price",
     "source": {"kind": "collector", "collector": "coingecko-price",
                "params": {"coin": "bitcoin"}}},
    {"id": "cbbi-multi", "name": "CBBI", "kpiType": "cbbi-multi",
     "source": {"kind": "n8n", "webhookUrl": "http://127.0.0.1:5678/webhook/cbbi"},
     "kpiIds": ["cbbi-mvrv", "cbbi-rhodl"],
     "analysisConfig": {"indicators": {"cbbi-mvrv": {"high": 3.5, "low": 0.8}}}},
]




def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert (code, out.strip()) == (0, f"metric-stream {__version__}")
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "init" in out
    assert "schemas" in out
    assert "METRIC_STREAM_" in out
    code, out, _ = run(capsys, "init", "--help")
    assert code == 0
    assert "--seed" in out


def test_bad_arguments_exit_2_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "nonsense")
    assert code == 2
    assert "invalid choice: 'nonsense'" in err
    code, _, err = run(capsys, "--backend", "gcp", "init")
    assert code == 2
    assert "invalid choice: 'gcp'" in err
    code, _, err = run(capsys, "schemas", "--check")
    assert code == 2
    assert "--check needs --out" in err


def test_bad_setting_names_the_environment_variable(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRIC_STREAM_QUEUE_MAX_RECEIVES", "zero")
    code, _, err = run(capsys, "init")
    assert code == 2
    assert "METRIC_STREAM_QUEUE_MAX_RECEIVES" in err
    assert "Traceback" not in err
    assert not Path(".metric-stream").exists()


def test_init_is_idempotent(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    home = tmp_path / "data"
    code, out, _ = run(capsys, "--home", str(home), "init")
    assert code == 0
    assert "created SQLite database" in out
    assert "created blob folder" in out
    assert (home / "metric-stream.db").is_file()
    assert (home / "blobs").is_dir()
    code, out, _ = run(capsys, "--home", str(home), "init")
    assert code == 0
    assert "nothing changed" in out


def test_init_seeds_the_registry_and_keeps_existing_entries(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    seed = tmp_path / "kpis.json"
    seed.write_text(json.dumps(SEED))
    code, out, _ = run(capsys, "--home", "h", "init", "--seed", str(seed))
    assert code == 0
    assert "2 KPI(s) added" in out
    services = build_services(Settings(home=Path("h")))
    assert sorted(services.registry.kpis.ids()) == ["btc-price", "cbbi-multi"]
    assert sorted(services.registry.kpi_sources()) == ["btc-price", "cbbi-mvrv", "cbbi-rhodl"]
    code, out, _ = run(capsys, "--home", "h", "init", "--seed", str(seed))
    assert code == 0
    assert "0 KPI(s) added, 2 already present" in out


def test_a_bad_seed_file_names_the_entry_and_field_and_creates_nothing(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = [SEED[0], {**SEED[1], "kpiIds": ["ok", "not ok"], "colour": "red"}]
    seed = tmp_path / "kpis.json"
    seed.write_text(json.dumps(bad))
    code, _, err = run(capsys, "--home", "h", "init", "--seed", str(seed))
    assert code == 2
    assert "kpis.json[1].kpiIds.1" in err
    assert "kpis.json[1].colour: is not a known field" in err
    assert not Path("h").exists()
    seed.write_text("{not json")
    code, _, err = run(capsys, "--home", "h", "init", "--seed", str(seed))
    assert code == 2
    assert "is not JSON" in err
    code, _, err = run(capsys, "--home", "h", "init", "--seed", str(tmp_path / "missing.json"))
    assert code == 2
    assert "cannot read" in err


def test_the_console_script_prints_no_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "metric_stream.cli.main", "--home", str(tmp_path / "h"),
         "init", "--seed", str(tmp_path / "absent.json")],
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "cannot read" in result.stderr
