"""`metric-stream tui`: what it refuses before opening, and a whole run in a headless
terminal (the console opened on the demo store, keys pressed, quit)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_support import run_cli
from tests.tui.conftest import local_console


@pytest.mark.parametrize(("argv", "code", "said"), [
    (["tui", "--url", "http://127.0.0.1:8080"], 2, "METRIC_STREAM_ADMIN_KEY"),
    (["tui", "--url", "127.0.0.1:8080"], 2, "must be an http(s) URL"),
    (["tui", "--url", "http://127.0.0.1:8080", "--demo"], 2, "--demo"),
    (["tui", "--demo"], 1, "run `metric-stream run --demo` first"),
    (["tui", "--refresh", "0"], 2, "not a number of seconds"),
])
def test_refusals(capsys: pytest.CaptureFixture[str], argv: list[str], code: int,
                  said: str) -> None:
    status, _, err = run_cli(capsys, *argv)
    assert status == code and said in err


def test_a_headless_session_on_the_demo_store(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    demo = tmp_path / "ms" / "demo"
    demo.parent.mkdir()
    monkeypatch.chdir(demo.parent)
    local_console()  # a seeded store in ./home
    Path("home").rename(demo)
    env = {**os.environ, "TEXTUAL_DRIVER": "textual.drivers.headless_driver:HeadlessDriver",
           "TEXTUAL_PRESS": "2,3,enter,escape,q"}
    done = subprocess.run(
        [sys.executable, "-m", "metric_stream.cli.main", "--home", str(demo.parent), "tui",
         "--demo"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
