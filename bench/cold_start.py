"""Cold start of the ingestion Lambda handler: import of the Chalice app plus its first
call (a real API Gateway proxy event for POST /api/kpi-data), and the peak RSS of
the process, on the embedded backend. Each run is a fresh interpreter.

    python bench/cold_start.py [--runs 7] [--json]

Targets (issue "data in"): <= 300 ms and <= 128 MB; no matplotlib/reportlab/textual.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EVENT = REPO / "tests" / "events" / "apigw-kpi-data.json"
KEY = "cold-start-key"

PROBE = r"""
import json, resource, sys, time
started = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import app as chalice_app
imported = time.perf_counter()
event = json.loads(open(sys.argv[2]).read())
response = chalice_app.app(event, None)
called = time.perf_counter()
heavy = sorted(m for m in ("matplotlib", "reportlab", "textual", "boto3", "botocore")
               if m in sys.modules)
print(json.dumps({"import_ms": (imported - started) * 1000,
                  "first_call_ms": (called - imported) * 1000,
                  "total_ms": (called - started) * 1000,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "status": response["statusCode"], "heavy_modules": heavy}))
"""


def prepare_home(home: Path) -> None:
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


def measure_once(home: Path) -> dict[str, object]:
    env = {**os.environ, "METRIC_STREAM_HOME": str(home),
           "METRIC_STREAM_INGESTION_KEY": KEY, "METRIC_STREAM_BACKEND": "embedded"}
    out = subprocess.run([sys.executable, "-c", PROBE, str(REPO / "functions"), str(EVENT)],
                         env=env, capture_output=True, text=True, check=True).stdout
    figures: dict[str, object] = json.loads(out)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        for i in range(args.runs):
            home = Path(tmp) / f"home{i}"  # a fresh store each time: the first point is new
            prepare_home(home)
            runs.append(measure_once(home))
    def median(key: str) -> float:
        return statistics.median(float(r[key]) for r in runs)  # type: ignore[arg-type]
    figures = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "handler": "functions/app.py POST /api/kpi-data (embedded)", "runs": len(runs),
        "import_ms_median": median("import_ms"), "first_call_ms_median": median("first_call_ms"),
        "total_ms_median": median("total_ms"), "peak_rss_mb_median": median("peak_rss_mb"),
        "statuses": sorted({int(r["status"]) for r in runs}),  # type: ignore[call-overload]
        "heavy_modules": sorted({m for r in runs for m in r["heavy_modules"]}),  # type: ignore[attr-defined]
        "target_ms": 300, "target_mb": 128,
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(f"cold start, {figures['handler']}: {len(runs)} fresh interpreters, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"{'run':>4} {'import ms':>10} {'call ms':>8} {'total ms':>9} {'peak MB':>8}")
    for i, r in enumerate(runs, 1):
        print(f"{i:>4} {r['import_ms']:>10.1f} {r['first_call_ms']:>8.1f} "
              f"{r['total_ms']:>9.1f} {r['peak_rss_mb']:>8.1f}")
    print(f"median {figures['total_ms_median']:.0f} ms (target <= 300), "
          f"{figures['peak_rss_mb_median']:.0f} MB (target <= 128); heavy modules loaded: "
          f"{figures['heavy_modules'] or 'none'}; statuses {figures['statuses']}")


if __name__ == "__main__":
    main()
