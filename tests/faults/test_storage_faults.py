"""A full disk and a read-only home: `metric-stream run --demo` stops with one line that
names the problem (no traceback) and a non-zero exit code; what was stored before is
still there, unchanged and readable; once the disk has room again (or is writable
again) the same store runs a whole cycle. `serve` answers ingestion on a full disk with
a 503 naming the problem (so the sender retries), and stores the point once after.

How the fault is made depends on what the machine allows:
- `tmpfs`: the home is a small tmpfs mount, filled up with a file (the kernel's own
  ENOSPC) or remounted read-only (EROFS). Needs the right to mount (root with
  CAP_SYS_ADMIN, as in this repo's CI); skipped, saying why, where mounting is refused.
- `injected` (runs everywhere): the CLI in-process with the fault put in at the
  adapters' writes: SQLite's own "disk full" (`PRAGMA max_page_count`) or a database
  opened read-only (`mode=ro`), and blob writes failing with ENOSPC / EROFS.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from metric_stream.adapters import sqlite
from metric_stream.bootstrap import build_services
from metric_stream.services import collect
from metric_stream.settings import Settings
from tests.cli_support import run_cli
from tests.faults.fakes import Drained
from tests.integration.test_serve_cycle import KEY, start_serve

pytestmark = pytest.mark.slow

TMPFS_SIZE = "16m"
FAULTED_WAIT_S = 60  # a run that waits for a job the store cannot move fails, not hangs


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=False,
                          timeout=30)


@pytest.fixture(scope="module")
def can_mount(tmp_path_factory: pytest.TempPathFactory) -> str | None:
    """None if this process may mount a tmpfs, else why not."""
    probe = tmp_path_factory.mktemp("mount-probe")
    try:
        done = _mount("-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe))
    except OSError as exc:
        return f"cannot run mount: {exc}"
    if done.returncode != 0:
        return f"mounting a tmpfs is refused here: {done.stderr.strip()}"
    subprocess.run(["umount", str(probe)], check=True, timeout=30)
    return None


@pytest.fixture
def tmpfs_home(tmp_path: Path, can_mount: str | None) -> Iterator[Path]:
    if can_mount is not None:
        pytest.skip(f"{can_mount}; the injected variant covers this case")
    home = tmp_path / "home"
    home.mkdir()
    assert _mount("-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(home)).returncode == 0
    try:
        yield home
    finally:
        if subprocess.run(["umount", str(home)], check=False, timeout=30).returncode:
            subprocess.run(["umount", "-l", str(home)], check=False, timeout=30)


def cli(home: Path, *argv: str) -> tuple[int, str, str]:
    """`metric-stream --home HOME ARGV` in a process of its own."""
    done = subprocess.run([sys.executable, "-m", "metric_stream.cli.main", "--home", str(home),
                           *argv], capture_output=True, text=True, timeout=180, check=False,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    return done.returncode, done.stdout, done.stderr


def fill(path: Path, leave_kib: int) -> Path:
    """Fill the file system of `path` up to `leave_kib` KiB free."""
    filler = path / "filler"
    stat = os.statvfs(path)
    room = stat.f_bavail * stat.f_frsize - leave_kib * 1024
    with filler.open("wb", buffering=0) as out, contextlib.suppress(OSError):  # ENOSPC
        while room > 0:
            written = out.write(b"\0" * min(room, 1 << 20)) or 0
            if not written:
                break
            room -= written
    return filler


def stored_rows(database: Path) -> dict[tuple[str, str], str]:
    """Every point as SQLite holds it (read apart from the adapter, then closed)."""
    with closing(sqlite3.connect(database)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return {(pk, sk): body for pk, sk, body in conn.execute(
            "SELECT pk, sk, body FROM records WHERE pk LIKE 'timeseries:%'")}


def assert_intact(store: Path, before: dict[tuple[str, str], str]) -> None:
    after = stored_rows(store / "metric-stream.db")
    assert {k: after.get(k) for k in before} == before  # every point kept, unchanged
    services = build_services(Settings(home=store))
    kpi_ids = {pk.split(":", 1)[1] for pk, _ in before}
    read = {kpi_id: len(services.timeseries.points(kpi_id)) for kpi_id in kpi_ids}
    assert all(n >= 365 for n in read.values()), read  # and readable through the store


def assert_refused(code: int, out: str, err: str, *words: str) -> None:
    assert code != 0, out + err
    assert "Traceback" not in out + err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("metric-stream: "), err
    assert any(w in last.lower() for w in words), last


# ---------------------------------------------------------------- a real file system
@pytest.mark.parametrize("leave_kib", [0, 200])
def test_run_on_a_full_disk_says_so_and_keeps_what_was_stored(
        tmpfs_home: Path, leave_kib: int) -> None:
    code, out, err = cli(tmpfs_home, "run", "--demo")
    assert code == 0, out + err
    store = tmpfs_home / "demo"
    before = stored_rows(store / "metric-stream.db")
    filler = fill(tmpfs_home, leave_kib)

    code, out, err = cli(tmpfs_home, "run", "--demo", "--wait", str(FAULTED_WAIT_S))
    assert_refused(code, out, err, "full")

    filler.unlink()
    assert_intact(store, before)
    code, out, err = cli(tmpfs_home, "run", "--demo")
    assert code == 0, out + err


def test_run_on_a_read_only_home_says_so_and_keeps_what_was_stored(tmpfs_home: Path) -> None:
    code, out, err = cli(tmpfs_home, "run", "--demo")
    assert code == 0, out + err
    store = tmpfs_home / "demo"
    before = stored_rows(store / "metric-stream.db")
    assert _mount("-o", "remount,ro", str(tmpfs_home)).returncode == 0
    try:
        code, out, err = cli(tmpfs_home, "run", "--demo", "--wait", str(FAULTED_WAIT_S))
        assert_refused(code, out, err, "read-only")
    finally:
        assert _mount("-o", "remount,rw", str(tmpfs_home)).returncode == 0
    assert_intact(store, before)
    code, out, err = cli(tmpfs_home, "run", "--demo")
    assert code == 0, out + err


def test_serve_answers_ingestion_on_a_full_disk_with_503_then_stores_once(
        tmpfs_home: Path) -> None:
    seed = tmpfs_home.parent / "kpis.json"
    seed.write_text(json.dumps([{
        "id": "fear-greed-index", "name": "Fear & Greed", "kpiType": "index",
        "source": {"kind": "n8n", "webhookUrl": "http://127.0.0.1:5678/webhook/fear-greed"}}]))
    code, out, err = cli(tmpfs_home, "init", "--no-defaults", "--seed", str(seed))
    assert code == 0, out + err  # (a process of its own: this one keeps no file open there)
    process, url = start_serve(tmpfs_home, "--workers", "1", "--no-workers")
    serve = Drained(process)
    body = {"traceId": "trace_20261129_000000_abcdef", "kpiId": "fear-greed-index",
            "kpiType": "index", "timestamp": "2026-11-29T00:00:00Z", "data": {"value": 71}}
    headers = {"X-API-Key": KEY}
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=10) as http:
            first = http.post("/api/kpi-data", json={**body, "timestamp": "2026-11-28T00:00:00Z"})
            assert first.status_code in (201, 202), first.text  # room to spare
            filler = fill(tmpfs_home, 0)
            full = http.post("/api/kpi-data", json=body)
            assert full.status_code == 503, full.text
            problem = full.json()["error"]
            assert problem["code"] == "storage_unavailable" and "full" in problem["message"]
            filler.unlink()
            stored = http.post("/api/kpi-data", json=body)
            again = http.post("/api/kpi-data", json=body)
    finally:
        output = serve.stop()
    assert stored.status_code in (201, 202), stored.text
    assert again.json()["status"] == "duplicate", again.text
    assert process.returncode == 0, output
    assert "Traceback" not in output
    points = build_services(Settings(home=tmpfs_home)).timeseries.points("fear-greed-index")
    assert [(p.timestamp.day, p.value) for p in points] == [(28, 71.0), (29, 71.0)]


# ---------------------------------------------------------------- injected at the adapters
def _full_database(monkeypatch: pytest.MonkeyPatch) -> None:
    original = sqlite.Database._open

    def open_full(self: sqlite.Database) -> sqlite3.Connection:
        conn = original(self)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "disk is full"
        return conn

    monkeypatch.setattr(sqlite.Database, "_open", open_full)
    _blob_writes_fail(monkeypatch, errno.ENOSPC)


def _read_only_database(monkeypatch: pytest.MonkeyPatch) -> None:
    connect = sqlite3.connect

    def connect_read_only(path: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn: sqlite3.Connection = connect(f"{Path(path).as_uri()}?mode=ro", *args, uri=True,
                                           **kwargs)
        return conn

    monkeypatch.setattr("metric_stream.adapters.sqlite.sqlite3.connect", connect_read_only)
    _blob_writes_fail(monkeypatch, errno.EROFS)


def _blob_writes_fail(monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    def refuse(*args: Any, **kwargs: Any) -> tuple[int, str]:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr("metric_stream.adapters.files.tempfile.mkstemp", refuse)


@pytest.mark.parametrize(("fault", "words"), [
    (_full_database, ("full",)),
    (_read_only_database, ("read-only", "readonly")),
], ids=["full-disk", "read-only"])
def test_run_with_the_fault_injected_says_so_and_keeps_what_was_stored(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        fault: Callable[[pytest.MonkeyPatch], None], words: tuple[str, ...]) -> None:
    home = tmp_path / "home"
    code, out, err = run_cli(capsys, "--home", str(home), "run", "--demo")
    assert code == 0, out + err
    store = home / "demo"
    before = stored_rows(store / "metric-stream.db")
    with monkeypatch.context() as patched:
        fault(patched)
        code, out, err = run_cli(capsys, "--home", str(home), "run", "--demo", "--wait",
                                 str(FAULTED_WAIT_S))
    assert_refused(code, out, err, *words)
    assert_intact(store, before)
    code, out, err = run_cli(capsys, "--home", str(home), "run", "--demo")
    assert code == 0, out + err


def test_a_disk_that_fills_up_while_collecting_stops_the_run_with_the_reason(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the collectors run, every write fails as SQLite fails on a full disk: their
    values cannot be kept, nor their failures. The run stops at the first such failure
    and says why; it neither blames each source for the store's failure nor waits for
    the job's fan-in timeout (30 min) on a store it cannot write."""
    home = tmp_path / "home"
    code, out, err = run_cli(capsys, "--home", str(home), "run", "--demo")
    assert code == 0, out + err
    before = stored_rows(home / "demo" / "metric-stream.db")
    full = threading.Event()
    collect_kpi, writing = collect.collect_kpi, sqlite.Database.writing

    def fill_then_collect(*args: Any, **kwargs: Any) -> Any:
        full.set()  # the job is created and its fan-out under way
        return collect_kpi(*args, **kwargs)

    @contextmanager
    def writing_on_a_full_disk(self: sqlite.Database) -> Iterator[sqlite3.Connection]:
        with writing(self) as conn:
            yield conn
            if full.is_set():  # what SQLite raises when the disk is full
                raise sqlite3.OperationalError("database or disk is full")

    with monkeypatch.context() as patched:
        patched.setattr(collect, "collect_kpi", fill_then_collect)
        patched.setattr(sqlite.Database, "writing", writing_on_a_full_disk)
        started = time.monotonic()
        code, out, err = run_cli(capsys, "--home", str(home), "run", "--demo", "--wait",
                                 str(FAULTED_WAIT_S))
    assert time.monotonic() - started < FAULTED_WAIT_S / 2, "it waited for the job"
    assert_refused(code, out, err, "full")
    assert "could not record the failure" not in err  # the store failed, not the sources
    assert_intact(home / "demo", before)
