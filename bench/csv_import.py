"""CSV backfill speed: a 100,000-row file imported with `import_csv` on the embedded
backend, each run into a fresh data folder (so every row is new).

    .venv/bin/python bench/csv_import.py [--rows N] [--repeat N] [--json]

Only the `import_csv` call is timed (parsing, validation, storing, the import log).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from metric_stream.bootstrap import build_services
from metric_stream.models.kpi import CollectorSource, KpiDefinition
from metric_stream.services.imports import import_csv
from metric_stream.settings import Settings

KPI_ID = "bench-btc-price-usd"


def make_csv(rows: int) -> bytes:
    start = datetime(2000, 1, 1, tzinfo=UTC)
    lines = ["timestamp,value,metadata"]
    for i in range(rows):
        moment = start + timedelta(hours=i)
        meta = '"{""note"": ""backfill""}"' if i % 10 == 0 else ""
        lines.append(f"{moment:%Y-%m-%dT%H:%M:%SZ},{30_000 + (i % 9_000) * 7.25:.2f},{meta}")
    return ("\n".join(lines) + "\n").encode()


def one_run(data: bytes, rows: int) -> float:
    with tempfile.TemporaryDirectory(prefix="ms-bench-") as home:
        services = build_services(Settings(backend="embedded", home=Path(home)))
        services.init()
        services.registry.kpis.create(KpiDefinition(
            id=KPI_ID, name="BTC price", kpi_type="price",
            source=CollectorSource(collector="demo", params={"kind": "btc-price"})))
        started = time.perf_counter()
        status = import_csv(services, KPI_ID, data, filename="bench.csv")
        elapsed = time.perf_counter() - started
    if status.rows_imported != rows:
        raise SystemExit(f"imported {status.rows_imported} of {rows} rows: {status}")
    return elapsed


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    data = make_csv(args.rows)
    times = [one_run(data, args.rows) for _ in range(args.repeat)]
    median = statistics.median(times)
    figures = {
        "rows": args.rows, "bytes": len(data), "runs": args.repeat,
        "median_s": round(median, 3), "min_s": round(min(times), 3),
        "max_s": round(max(times), 3), "rows_per_s": round(args.rows / median),
        "target_s": 3.0, "machine": machine(),
    }
    if args.json:
        print(json.dumps(figures))
        return 0
    print(f"CSV import, embedded backend: {args.rows:,} rows ({len(data):,} bytes), "
          f"{args.repeat} runs, each into a fresh home")
    print(f"{'median s':>10} {'min s':>8} {'max s':>8} {'rows/s':>10} {'target s':>9}")
    print(f"{median:>10.3f} {min(times):>8.3f} {max(times):>8.3f} "
          f"{args.rows / median:>10,.0f} {3.0:>9.1f}")
    info = figures["machine"]
    print(f"machine: {info['cpus']} CPU(s), Python {info['python']}, {info['platform']}, "
          f"load average {info['load_average']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
