"""Ingestion throughput through `metric-stream serve` over HTTP.

Starts `serve` on loopback with a fresh embedded home, a registry of 200 KPIs and one
job per 200 callbacks (so every callback takes the whole path: point, package, job
state), then 200 concurrent keep-alive clients POST distinct KPI/timestamp results
plus 10% replays of earlier ones. Prints callbacks/s, p50/p99 latency, and checks that no
point was lost or doubled. A raw asyncio HTTP/1.1 client keeps the load generator
cheap: it shares the 2 cores with the server.

    python bench/ingest.py [--requests 20000] [--clients 200] [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

KEY = "bench-ingestion-key"
SERVE_ARGS: list[str] = []  # extra `serve` options (--serve-args)
KPIS = 200


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed_registry(home: Path) -> None:
    kpis = [{"id": f"bench-kpi-{i:03d}", "name": f"Bench KPI {i}", "kpiType": "price",
             "source": {"kind": "collector", "collector": "demo"}} for i in range(KPIS)]
    seed = home / "kpis.json"
    home.mkdir(parents=True, exist_ok=True)
    seed.write_text(json.dumps(kpis))
    subprocess.run([sys.executable, "-m", "metric_stream.cli.main", "--home", str(home), "init",
                    "--no-defaults", "--seed", str(seed)] if _has_no_defaults() else
                   [sys.executable, "-m", "metric_stream.cli.main", "--home", str(home), "init",
                    "--seed", str(seed)], check=True, capture_output=True)


def _has_no_defaults() -> bool:
    out = subprocess.run([sys.executable, "-m", "metric_stream.cli.main", "init", "--help"],
                         capture_output=True, text=True, check=True).stdout
    return "--no-defaults" in out


def trace_of(day: int) -> str:
    return f"trace_20240101_000000_{day:06x}"


def create_jobs(home: Path, days: int) -> None:
    from metric_stream.bootstrap import build_services
    from metric_stream.models import Job
    from metric_stream.settings import Settings

    services = build_services(Settings(home=home))
    ids = [f"bench-kpi-{i:03d}" for i in range(KPIS)]
    for day in range(days):
        services.jobs.create(Job(trace_id=trace_of(day), kpi_ids=ids,
                                 created_at=datetime(2024, 1, 1, tzinfo=UTC)))


def payloads(count: int) -> list[bytes]:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    distinct = int(count / 1.1)
    bodies = []
    for n in range(distinct):
        kpi, day = n % KPIS, n // KPIS
        bodies.append(json.dumps({
            "traceId": trace_of(day), "kpiId": f"bench-kpi-{kpi:03d}", "kpiType": "price",
            "timestamp": (start + timedelta(minutes=day)).isoformat(), "data": 1000.0 + n,
        }).encode())
    rng = random.Random(7)
    replays = [bodies[rng.randrange(distinct)] for _ in range(count - distinct)]
    mixed = bodies + replays
    rng.shuffle(mixed)
    return mixed


async def client(port: int, queue: asyncio.Queue[bytes], latencies: list[float],
                 statuses: dict[int, int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            try:
                body = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            request = (b"POST /api/kpi-data HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       b"Content-Type: application/json\r\nX-API-Key: " + KEY.encode() +
                       b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            sent = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - sent)
            status = int(status_line.split()[1])
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


async def load(port: int, bodies: list[bytes], clients: int) -> tuple[float, list[float],
                                                                      dict[int, int]]:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    started = time.perf_counter()
    await asyncio.gather(*(client(port, queue, latencies, statuses) for _ in range(clients)))
    return time.perf_counter() - started, latencies, statuses


def wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("serve exited early")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("serve did not start")


def count_points(home: Path) -> tuple[int, int]:
    import sqlite3

    conn = sqlite3.connect(home / "metric-stream.db")
    total = conn.execute("SELECT COUNT(*) FROM records WHERE pk LIKE 'timeseries:%'").fetchone()[0]
    distinct = conn.execute("SELECT COUNT(DISTINCT pk || sk) FROM records "
                            "WHERE pk LIKE 'timeseries:%'").fetchone()[0]
    conn.close()
    return int(total), int(distinct)


def run_once(requests: int, clients: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "serve.log", "wb") as log:
        home = Path(tmp) / "home"
        seed_registry(home)
        create_jobs(home, requests // KPIS + 1)
        port = free_port()
        env = {**os.environ, "METRIC_STREAM_HOME": str(home), "METRIC_STREAM_INGESTION_KEY": KEY}
        server = subprocess.Popen([sys.executable, "-m", "metric_stream.cli.main", "serve",
                                   "--port", str(port), *SERVE_ARGS], env=env,
                                  stdout=subprocess.DEVNULL,
                                  stderr=log)
        try:
            wait_ready(port, server)
            bodies = payloads(requests)
            expected = len(set(bodies))
            elapsed, latencies, statuses = asyncio.run(load(port, bodies, clients))
        finally:
            server.terminate()
            server.wait(timeout=30)
            if os.environ.get("BENCH_SHOW_LOG"):
                print((Path(tmp) / "serve.log").read_text()[-3000:], file=sys.stderr)
        stored, distinct = count_points(home)
        latencies.sort()
        return {
            "requests": len(bodies), "seconds": elapsed, "rps": len(bodies) / elapsed,
            "p50_ms": latencies[len(latencies) // 2] * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
            "ok": statuses.get(200, 0) + statuses.get(202, 0),
            "errors": sum(v for k, v in statuses.items() if k >= 300),
            "lost": expected - stored, "doubled": stored - distinct,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--serve-args", default="--no-workers",
                        help="options for serve (default --no-workers: the API's own capacity; "
                             "with the cycle's workers on, serve also runs the stages of the "
                             "~100 jobs the bench completes, on the same two cores); "
                             "e.g. --serve-args='' or --serve-args='--workers 1'")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    SERVE_ARGS.extend(args.serve_args.split())
    runs = [run_once(args.requests, args.clients) for _ in range(args.runs)]
    figures = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "clients": args.clients, "requests_per_run": runs[0]["requests"], "runs": len(runs),
        "serve_args": args.serve_args,
        "rps_median": statistics.median(r["rps"] for r in runs),
        "p50_ms_median": statistics.median(r["p50_ms"] for r in runs),
        "p99_ms_median": statistics.median(r["p99_ms"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
        "lost": sum(r["lost"] for r in runs), "doubled": sum(r["doubled"] for r in runs),
        "target_rps": 2000,
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(f"ingest through serve: {figures['requests_per_run']} callbacks x {len(runs)} runs, "
          f"{args.clients} clients, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"serve {args.serve_args or '(defaults)'}")
    print(f"{'run':>4} {'rps':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'lost':>5} "
          f"{'doubled':>8}")
    for i, r in enumerate(runs, 1):
        print(f"{i:>4} {r['rps']:>8.0f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} "
              f"{r['errors']:>7.0f} {r['lost']:>5.0f} {r['doubled']:>8.0f}")
    print(f"median {figures['rps_median']:.0f} callbacks/s (target >= 2000); "
          f"lost {figures['lost']}, doubled {figures['doubled']}")


if __name__ == "__main__":
    main()
