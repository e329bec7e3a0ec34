"""`metric-stream import` and `metric-stream retention`: summaries and exit codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.cli_support import run_cli as run

SEED = [{"id": "btc", "name": "BTC", "kpiType": "price",
         "source": {"kind": "collector", "collector": "demo", "params": {"kind": "btc-price"}}}]




@pytest.fixture
def home(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(SEED))
    folder = str(tmp_path / "home")
    assert run(capsys, "--home", folder, "init", "--seed", str(seed))[0] == 0
    return folder


def write_csv(path: Path, rows: list[str]) -> str:
    path.write_text("\n".join(["timestamp,value,metadata", *rows]) + "\n")
    return str(path)


def stamp(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%SZ}"


def test_a_clean_import_exits_0_with_a_summary(
        capsys: pytest.CaptureFixture[str], home: str, tmp_path: Path) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    path = write_csv(tmp_path / "btc.csv",
                     [f"{stamp(start + timedelta(days=n))},{100 + n}," for n in range(5)])
    code, out, err = run(capsys, "--home", home, "import", "btc", path)
    assert (code, err) == (0, "")
    assert "import imp_" in out
    assert "of btc.csv into btc: 5 row(s)" in out
    assert "imported           5" in out
    assert "duplicates         0" in out
    assert "refused            0" in out
    code, out, _ = run(capsys, "--home", home, "import", "btc", path)
    assert code == 0
    assert "imported           0" in out
    assert "duplicates         5" in out


def test_refused_rows_exit_1_listing_the_first_ten(
        capsys: pytest.CaptureFixture[str], home: str, tmp_path: Path) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    rows = [f"{stamp(start)},1,"]
    rows += [f"2025-02-{n:02d}T00:00:00,{n}," for n in range(1, 13)]  # 12 without a zone
    rows += [f"{stamp(start + timedelta(days=60))},abc,"]
    path = write_csv(tmp_path / "mixed.csv", rows)
    code, out, _ = run(capsys, "--home", home, "import", "btc", path)
    assert code == 1
    assert "imported           1" in out
    assert "refused           13" in out
    assert "row 3: timestamp: must carry a timezone" in out
    assert "2025-02-02T00:00:00,2," in out  # the raw line
    assert "row 12:" in out
    assert "row 13:" not in out  # only the first ten are listed
    assert "row 15:" not in out
    assert "and 3 more" in out


@pytest.mark.parametrize(("args", "message"), [
    (["btc", "missing.csv"], "cannot read missing.csv"),
    (["eth", "GOOD"], "KPI 'eth' is not in the registry; nothing was imported"),
    (["btc", "BAD_HEADER"], "must start with the header row timestamp,value,metadata"),
])
def test_unusable_input_exits_2(capsys: pytest.CaptureFixture[str], home: str,
                                tmp_path: Path, args: list[str], message: str) -> None:
    good = write_csv(tmp_path / "good.csv", ["2025-01-01T00:00:00Z,1,"])
    bad = tmp_path / "bad.csv"
    bad.write_text("when,price\n2025-01-01T00:00:00Z,1\n")
    args = [{"GOOD": good, "BAD_HEADER": str(bad)}.get(a, a) for a in args]
    code, out, err = run(capsys, "--home", home, "import", *args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert "imported" not in out


def test_retention_prints_a_table_and_reruns_to_nothing(
        capsys: pytest.CaptureFixture[str], home: str, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    rows = [f"{stamp(now - timedelta(days=d))},{d}," for d in (400, 200, 50, 10, 1)]
    assert run(capsys, "--home", home, "import", "btc", write_csv(tmp_path / "h.csv", rows))[0] == 0

    code, out, _ = run(capsys, "--home", home, "retention", "--days", "30", "--dry-run")
    assert code == 0
    assert "30 days" in out
    assert "dry run: nothing changed" in out
    assert "would archive" in out
    assert not (Path(home) / "blobs" / "archive").exists()

    code, out, _ = run(capsys, "--home", home, "retention", "--days", "30")
    assert code == 0
    line = next(line for line in out.splitlines() if line.strip().startswith("btc"))
    assert line.split()[1:3] == ["3", "3"]
    assert "archive/timeseries/btc/" in line
    assert "total" in out
    archived = sorted((Path(home) / "blobs" / "archive" / "timeseries" / "btc").iterdir())
    assert archived  # one file per year of the three old points
    assert all(p.name.endswith(".jsonl.gz") for p in archived)

    code, out, _ = run(capsys, "--home", home, "retention", "--days", "30")
    assert code == 0
    assert "nothing to archive among 1 KPI(s)" in out


def test_retention_refuses_a_bad_window(capsys: pytest.CaptureFixture[str], home: str) -> None:
    code, _, err = run(capsys, "--home", home, "retention", "--days", "0")
    assert code == 2
    assert "is not a number of days" in err
