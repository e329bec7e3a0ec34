"""Fan-out + fan-in of 200 KPIs on the embedded backend with the demo source: the time
from a schedule's tick to "analysis enqueued" (the job created, every KPI collected
through the ingestion service, the job settled and handed to the analysis queue).

    python bench/cycle_fanout.py [--kpis 200] [--runs 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from metric_stream.bootstrap import build_services
from metric_stream.collectors.demo import demo_registry, seed_history
from metric_stream.models import Schedule
from metric_stream.services import cycle
from metric_stream.services.schedules import tick
from metric_stream.settings import Settings


def run_once(kpis: int, history_days: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        services = build_services(Settings(home=Path(tmp) / "home"))
        services.init()
        entries = demo_registry(kpis)
        for entry in entries:
            services.registry.kpis.create(entry)
        now = datetime.now(UTC)
        if history_days:
            seed_history(services, entries, history_days, (now - timedelta(days=1)).date())
        services.registry.schedules.create(Schedule(
            id="daily", cron="* * * * *", created_at=now - timedelta(minutes=2)))
        with httpx.Client() as http:
            triggers = cycle.Triggers(http)
            started = time.perf_counter()
            fired = tick(services, lambda s, due: cycle.start_job(
                services, triggers, schedule_id=s.id)[0].trace_id)
            elapsed = time.perf_counter() - started
        (only,) = fired
        assert only.trace_id, only.error
        job = services.jobs.require(only.trace_id)
        queued = services.queue.depth("analysis").visible
        return {"seconds": elapsed, "kpis": len(job.kpi_ids), "analysis_enqueued": queued,
                "collected": len(job.kpi_ids) - len(job.missing)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kpis", type=int, default=200)
    parser.add_argument("--history-days", type=int, default=365)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    runs = [run_once(args.kpis, args.history_days) for _ in range(args.runs)]
    figures = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "kpis": runs[0]["kpis"], "history_days": args.history_days, "runs": len(runs),
        "seconds_median": statistics.median(r["seconds"] for r in runs),
        "seconds_min": min(r["seconds"] for r in runs),
        "seconds_max": max(r["seconds"] for r in runs),
        "all_collected": all(r["collected"] == r["kpis"] for r in runs),
        "analysis_enqueued_once": all(r["analysis_enqueued"] == 1 for r in runs),
        "target_seconds": 1.0,
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(f"tick -> analysis enqueued, {figures['kpis']} demo KPIs "
          f"({args.history_days} days of history each), embedded, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}")
    print(f"{'run':>4} {'seconds':>8} {'collected':>10}")
    for i, r in enumerate(runs, 1):
        print(f"{i:>4} {r['seconds']:>8.3f} {r['collected']:>6.0f}/{r['kpis']:.0f}")
    print(f"median {figures['seconds_median']:.3f} s (target <= 1 s); every KPI collected: "
          f"{figures['all_collected']}; analysis enqueued once: "
          f"{figures['analysis_enqueued_once']}")


if __name__ == "__main__":
    main()
