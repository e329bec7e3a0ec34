"""Cold start of the Lambda handlers: import of the Chalice app plus a first call with a
real event, and the peak RSS of the process, on the embedded backend. Each run is a
fresh interpreter and a fresh store. Handlers:

- `ingest`: POST /api/kpi-data (an API Gateway proxy event), a point for a new KPI;
- `tick`: the schedule tick (a CloudWatch scheduled event) firing a due schedule: the
  job is created and its 4 demo KPIs collected, then the jobs are recovered;
- `analysis`: the analysis queue's consumer (an SQS event) taking a job to packaging.

    python bench/cold_start.py [--runs 7] [--handler ingest|tick|analysis|all] [--json]

Targets (issues "data in" and "cycle"): <= 300 ms and <= 128 MB; no
matplotlib/reportlab/textual. `--json` prints one JSON object per handler, a line each.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EVENTS = REPO / "tests" / "events"
KEY = "cold-start-key"
SQS_TRACE_ID = "trace_20261129_060000_c01d57"  # the job tests/events/sqs-analysis.json names

PROBE = r"""
import json, sys, time
started = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import app as chalice_app
imported = time.perf_counter()
event = json.loads(open(sys.argv[3]).read())
answer = getattr(chalice_app, sys.argv[2])(event, None)
called = time.perf_counter()
if "statusCode" in answer:
    status = answer["statusCode"]
elif "fired" in answer:
    status = f"{sum(bool(f['traceId']) for f in answer['fired'])} job(s) started"
else:
    status = f"{len(answer['batchItemFailures'])} failed"
heavy = sorted(m for m in ("matplotlib", "reportlab", "textual", "boto3", "botocore")
               if m in sys.modules)
# ru_maxrss of a child keeps the parent's peak across fork and exec: read this
# process's own high-water mark instead
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status")
               if line.startswith("VmHWM:"))
print(json.dumps({"import_ms": (imported - started) * 1000,
                  "first_call_ms": (called - imported) * 1000,
                  "total_ms": (called - started) * 1000,
                  "peak_rss_mb": peak_kb / 1024,
                  "status": status, "heavy_modules": heavy}))
"""


def prepare_ingest(home: Path) -> None:
    seed = home.parent / "seed.json"
    seed.write_text(json.dumps([{"id": "btc-price-usd", "name": "BTC", "kpiType": "price",
                                 "source": {"kind": "collector", "collector": "demo"}}]))
    subprocess.run([sys.executable, "-m", "metric_stream.cli.main", "--home", str(home), "init",
                    "--seed", str(seed), *(["--no-defaults"] if _flag("--no-defaults") else [])],
                   check=True, capture_output=True)


def _flag(name: str) -> bool:
    out = subprocess.run([sys.executable, "-m", "metric_stream.cli.main", "init", "--help"],
                         capture_output=True, text=True, check=True).stdout
    return name in out


def prepare_tick(home: Path) -> None:
    from metric_stream.bootstrap import build_services
    from metric_stream.collectors.demo import demo_registry
    from metric_stream.models import Schedule
    from metric_stream.settings import Settings

    services = build_services(Settings(home=home))
    services.init()
    for entry in demo_registry(4):
        services.registry.kpis.create(entry)
    services.registry.schedules.create(Schedule(
        id="every-minute", cron="* * * * *", created_at=datetime(2026, 1, 1, tzinfo=UTC)))


def prepare_analysis(home: Path) -> None:
    from metric_stream.bootstrap import build_services
    from metric_stream.collectors.demo import demo_registry
    from metric_stream.models import Job, JobStatus
    from metric_stream.settings import Settings

    services = build_services(Settings(home=home))
    services.init()
    entries = demo_registry(4)
    for entry in entries:
        services.registry.kpis.create(entry)
    services.jobs.create(Job(trace_id=SQS_TRACE_ID, kpi_ids=[k for e in entries for k in e.yields],
                             created_at=datetime.now(UTC), status=JobStatus.ANALYSING))


@dataclass(frozen=True)
class Handler:
    label: str
    attribute: str  # the handler's name in functions/app.py
    event: Path
    prepare: Callable[[Path], None]


HANDLERS = {
    "ingest": Handler("functions/app.py POST /api/kpi-data (embedded)", "app",
                      EVENTS / "apigw-kpi-data.json", prepare_ingest),
    "tick": Handler("functions/app.py tick, firing a due schedule (embedded)", "tick",
                    EVENTS / "cloudwatch-scheduled.json", prepare_tick),
    "analysis": Handler("functions/app.py analysis_consumer, one SQS record (embedded)",
                        "analysis_consumer", EVENTS / "sqs-analysis.json", prepare_analysis),
}


def measure_once(handler: Handler, home: Path) -> dict[str, object]:
    env = {**os.environ, "METRIC_STREAM_HOME": str(home),
           "METRIC_STREAM_INGESTION_KEY": KEY, "METRIC_STREAM_BACKEND": "embedded"}
    out = subprocess.run([sys.executable, "-c", PROBE, str(REPO / "functions"),
                          handler.attribute, str(handler.event)],
                         env=env, capture_output=True, text=True, check=True).stdout
    figures: dict[str, object] = json.loads(out)
    return figures


def measure(handler: Handler, runs: int) -> tuple[dict[str, object], list[dict[str, object]]]:
    with tempfile.TemporaryDirectory() as tmp:
        results = []
        for i in range(runs):
            home = Path(tmp) / f"home{i}"  # a fresh store each time: the first point is new
            home.parent.mkdir(parents=True, exist_ok=True)
            handler.prepare(home)
            results.append(measure_once(handler, home))

    def median(key: str) -> float:
        return statistics.median(float(r[key]) for r in results)  # type: ignore[arg-type]

    statuses = {r["status"] for r in results}
    figures = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "handler": handler.label, "runs": len(results),
        "import_ms_median": median("import_ms"), "first_call_ms_median": median("first_call_ms"),
        "total_ms_median": median("total_ms"), "peak_rss_mb_median": median("peak_rss_mb"),
        "statuses": sorted(statuses, key=str),
        "heavy_modules": sorted({m for r in results for m in r["heavy_modules"]}),  # type: ignore[attr-defined]
        "target_ms": 300, "target_mb": 128,
    }
    return figures, results


def print_table(figures: dict[str, object], runs: list[dict[str, object]]) -> None:
    print(f"cold start, {figures['handler']}: {len(runs)} fresh interpreters, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"{'run':>4} {'import ms':>10} {'call ms':>8} {'total ms':>9} {'peak MB':>8}")
    for i, r in enumerate(runs, 1):
        print(f"{i:>4} {r['import_ms']:>10.1f} {r['first_call_ms']:>8.1f} "
              f"{r['total_ms']:>9.1f} {r['peak_rss_mb']:>8.1f}")
    print(f"median {figures['total_ms_median']:.0f} ms (target <= 300), "
          f"{figures['peak_rss_mb_median']:.0f} MB (target <= 128); heavy modules loaded: "
          f"{figures['heavy_modules'] or 'none'}; statuses {figures['statuses']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--handler", choices=[*HANDLERS, "all"], default="all")
    parser.add_argument("--bytecode", action="store_true",
                        help="precompile metric-stream's own modules first, as a deployment "
                             "package would ship them (default: compiled from source each "
                             "time, as with PYTHONDONTWRITEBYTECODE and no __pycache__)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    chosen = list(HANDLERS) if args.handler == "all" else [args.handler]
    compiled = [REPO / "shared", REPO / "functions"]
    if args.bytecode:
        subprocess.run([sys.executable, "-m", "compileall", "-q", *map(str, compiled)],
                       check=True)
    all_figures: dict[str, object] = {"bytecode": args.bytecode, "handlers": {}}
    try:
        for n, name in enumerate(chosen):
            figures, runs = measure(HANDLERS[name], args.runs)
            all_figures["handlers"][name] = figures  # type: ignore[index]
            if args.json:
                continue
            if n:
                print()
            print_table(figures, runs)
    finally:
        if args.bytecode:  # leave the tree as it was
            for folder in compiled:
                for cache in folder.rglob("__pycache__"):
                    shutil.rmtree(cache, ignore_errors=True)
    if args.json:
        print(json.dumps(all_figures))


if __name__ == "__main__":
    main()
