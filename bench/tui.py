"""The admin console's speed on a full store: 200 KPIs with 365 days each and 5,000
delivery endpoints, the embedded backend, the local client (no server).

    .venv/bin/python bench/tui.py [--repeat 5] [--presses 30] [--json]

- start: a fresh interpreter importing the console and running it headless until the
  first screen (the Dashboard) has its data on screen (its first load finished);
- keypress: on the Endpoints list (5,000 rows), the time from a `down`/`up` key
  reaching the app to the frame that shows the moved cursor being rendered to terminal
  output (the headless driver discards what a terminal would be sent, so the bench
  renders each frame's segments itself); median and p95 of `--presses`, beside the
  same key on the KPIs list (200 rows), and the time to open the list (`5`) with its
  rows loaded. Textual's test pilot only settles the app between keys: its own wait
  after a key (~60-90 ms of idle polling) is not part of the figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

KPIS = 200
ENDPOINTS = 5_000
DAYS = 365


def seed(home: Path) -> None:
    from metric_stream.bootstrap import build_services
    from metric_stream.collectors.demo import demo_registry, seed_history
    from metric_stream.models.delivery import DeliveryEndpoint
    from metric_stream.settings import Settings

    services = build_services(Settings(home=home))
    services.init()
    entries = demo_registry(KPIS)
    for entry in entries:
        services.registry.kpis.create(entry)
    seed_history(services, entries, DAYS, (datetime.now(UTC) - timedelta(days=1)).date())
    endpoints = [DeliveryEndpoint(id=f"hook-{n:05d}", name=f"Receiver {n}",
                                  url=f"https://receiver-{n % 50}.example.com/hooks/{n}")
                 for n in range(ENDPOINTS)]
    puts = [services.registry.endpoints.put_op(e) for e in endpoints]
    for start in range(0, len(puts), 500):
        services.records.put_many(puts[start:start + 500])


STARTUP = """
import asyncio, sys, time
from pathlib import Path
from metric_stream.settings import Settings
from metric_stream_tui.app import AdminApp
from metric_stream_tui.client import LocalClient

async def main():
    app = AdminApp(LocalClient(Settings(home=Path(sys.argv[1]))), refresh_s=None)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        print(time.perf_counter() - START)

asyncio.run(main())
"""


def startup_seconds(home: Path) -> float:
    code = "import time; START = time.perf_counter()\n" + STARTUP
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, str(home)], capture_output=True,
                         text=True, check=True, timeout=120)
    wall = time.perf_counter() - started
    float(out.stdout.strip().splitlines()[-1])  # the child got there
    return wall


async def keypresses(home: Path, presses: int) -> dict[str, float]:
    from metric_stream.settings import Settings
    from metric_stream_tui.app import AdminApp
    from metric_stream_tui.client import LocalClient

    app = AdminApp(LocalClient(Settings(home=home)), refresh_s=None)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        started = time.perf_counter()
        await pilot.press("5")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        open_s = time.perf_counter() - started
        rows = app.screen.query_one("#list").row_count
        times = await key_to_frame(app, pilot, presses)
        await pilot.press("2")  # the KPIs list: 200 rows
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        small = await key_to_frame(app, pilot, presses)
    if rows != ENDPOINTS:
        raise SystemExit(f"the endpoints list showed {rows} rows, not {ENDPOINTS}")
    ordered = sorted(times)
    return {"open_endpoints_s": open_s, "keypress_median_ms": statistics.median(times) * 1000,
            "keypress_p95_ms": ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000,
            "keypress_small_list_median_ms": statistics.median(small) * 1000}


async def key_to_frame(app: Any, pilot: Any, presses: int) -> list[float]:
    """Seconds from each key event reaching the app to the first frame, rendered to
    terminal output, in which the list's cursor has moved."""
    from textual import events
    from textual._compositor import CompositorUpdate

    table = app.screen.query_one("#list")
    shown = asyncio.Event()
    before: list[int] = [table.cursor_row]
    original = app._display

    def display(screen: Any, renderable: Any) -> None:
        original(screen, renderable)
        if isinstance(renderable, CompositorUpdate):
            renderable.render_segments(app.console)  # what a terminal would be sent
            if table.cursor_row != before[0]:
                shown.set()

    app._display = display
    times: list[float] = []
    try:
        for n in range(presses):
            before[0] = table.cursor_row
            shown.clear()
            key = "down" if n % 2 == 0 else "up"
            started = time.perf_counter()
            app.post_message(events.Key(key, None))
            await asyncio.wait_for(shown.wait(), 10)
            times.append(time.perf_counter() - started)
            await pilot.pause()
    finally:
        app._display = original
    return times



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--presses", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-tui-") as folder:
        home = Path(folder)
        started = time.perf_counter()
        seed(home)
        seeded_s = time.perf_counter() - started
        starts = [startup_seconds(home) for _ in range(args.repeat)]
        keys = asyncio.run(keypresses(home, args.presses))
    figures: dict[str, Any] = {
        "kpis": KPIS, "days": DAYS, "endpoints": ENDPOINTS, "seed_s": round(seeded_s, 1),
        "start_to_first_screen_s": round(statistics.median(starts), 3),
        "start_runs_s": [round(s, 3) for s in starts],
        **{k: round(v, 3 if k.endswith("_s") else 1) for k, v in keys.items()},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average": list(os.getloadavg())},
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(f"console bench: {KPIS} KPIs x {DAYS} days, {ENDPOINTS:,} endpoints, local client")
    print(f"  start to first screen (fresh interpreter, median of {args.repeat}): "
          f"{figures['start_to_first_screen_s']:.3f} s  (target <= 1 s)")
    print(f"  open the endpoints list (5,000 rows):  {figures['open_endpoints_s']:.3f} s")
    print(f"  keypress to its frame, median / p95:    {figures['keypress_median_ms']:.1f} / "
          f"{figures['keypress_p95_ms']:.1f} ms  (target < 100 ms)")
    print(f"  the same keypress on the KPIs list:    "
          f"{figures['keypress_small_list_median_ms']:.1f} ms  (200 rows)")
    print(f"  machine: {figures['machine']['cpus']} CPUs, Python {figures['machine']['python']}")


if __name__ == "__main__":
    main()
