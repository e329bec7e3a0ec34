"""What the Cloudflare Worker proxy costs an ingestion callback, under `wrangler dev`
(workerd, on this machine) in front of `metric-stream serve` in proxy mode, against the
same callbacks straight to a second `serve` (not in proxy mode). Both stores are
embedded, both servers run one worker process, every callback stores a new point.

    .venv/bin/python bench/proxy.py [--calls 300] [--concurrency 16] [--json]

- latency: `--calls` sequential callbacks each way; p50 and p99, and what the proxy adds;
- throughput: `--calls` callbacks with `--concurrency` in flight, callbacks/s each way;
- the floor: a request the Worker answers itself (a 404 outside /api/), i.e. what
  `wrangler dev`'s local server and workerd cost before our code forwards anything.

The proxy's share includes a second local hop, the body's SHA-256 and the HMAC on both
sides; on Cloudflare the Worker runs at the edge, so the added latency there is the
edge-to-origin network, which this cannot measure.
"""

from __future__ import annotations

import argparse
import asyncio
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

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.wrangler_support import (
    INGEST_KEY,
    PROXY_SECRET,
    start_serve,
    start_worker,
)

from metric_stream.bootstrap import build_services
from metric_stream.models import CollectorSource, KpiDefinition
from metric_stream.settings import Settings

KPI = "btc-price-usd"
START = datetime(2020, 1, 1, tzinfo=UTC)


def seeded(home: Path) -> Path:
    services = build_services(Settings(home=home))
    services.init()
    services.registry.kpis.create(KpiDefinition(
        id=KPI, name="BTC", kpi_type="price", source=CollectorSource(collector="demo")))
    return home


def callback(n: int) -> dict[str, Any]:
    return {"traceId": "trace_20261205_060000_bench0", "kpiId": KPI, "kpiType": "price",
            "timestamp": (START + timedelta(minutes=n)).isoformat().replace("+00:00", "Z"),
            "data": 90_000.0 + n}


async def sequential(url: str, first: int, calls: int) -> list[float]:
    times = []
    async with httpx.AsyncClient(headers={"x-api-key": INGEST_KEY}, timeout=30) as client:
        for n in range(first, first + calls):
            started = time.perf_counter()
            answer = await client.post(f"{url}/api/kpi-data", json=callback(n))
            times.append(time.perf_counter() - started)
            if answer.status_code >= 300:
                raise SystemExit(f"{url}: {answer.status_code} {answer.text}")
    return times


async def floor(url: str, calls: int) -> list[float]:
    times = []
    async with httpx.AsyncClient(timeout=30) as client:
        for _ in range(calls):
            started = time.perf_counter()
            await client.get(f"{url}/not-the-api")
            times.append(time.perf_counter() - started)
    return times


async def concurrent(url: str, first: int, calls: int, width: int) -> float:
    limits = httpx.Limits(max_connections=width, max_keepalive_connections=width)
    async with httpx.AsyncClient(headers={"x-api-key": INGEST_KEY}, timeout=60,
                                 limits=limits) as client:
        gate = asyncio.Semaphore(width)

        async def one(n: int) -> None:
            async with gate:
                answer = await client.post(f"{url}/api/kpi-data", json=callback(n))
                if answer.status_code >= 300:
                    raise SystemExit(f"{url}: {answer.status_code} {answer.text}")

        started = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(first, first + calls)))
        return calls / (time.perf_counter() - started)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as folder:
        root = Path(folder)
        behind = start_serve(seeded(root / "behind"), root)
        direct = start_serve(seeded(root / "direct"), root, proxy_secret=None)
        worker = start_worker(behind.url, root, {"PROXY_SECRET": PROXY_SECRET,
                                                 "ACCESS_DISABLED": "true",
                                                 "RATE_LIMIT_PER_MINUTE": "0"})
        try:
            asyncio.run(sequential(worker.url, 10**6, 20))  # warm both paths up
            asyncio.run(sequential(direct.url, 10**6, 20))
            proxied = asyncio.run(sequential(worker.url, 0, args.calls))
            straight = asyncio.run(sequential(direct.url, 0, args.calls))
            alone = asyncio.run(floor(worker.url, args.calls))
            proxied_rate = asyncio.run(concurrent(worker.url, 10**5, args.calls,
                                                  args.concurrency))
            straight_rate = asyncio.run(concurrent(direct.url, 10**5, args.calls,
                                                   args.concurrency))
        finally:
            worker.stop()
            behind.stop()
            direct.stop()
    ms = {name: {"p50": statistics.median(v) * 1000, "p99": percentile(v, 0.99) * 1000}
          for name, v in (("proxy", proxied), ("direct", straight), ("worker_alone", alone))}
    figures = {
        "calls": args.calls, "concurrency": args.concurrency,
        "latency_ms": {k: {q: round(x, 2) for q, x in v.items()} for k, v in ms.items()},
        "added_ms": {"p50": round(ms["proxy"]["p50"] - ms["direct"]["p50"], 2),
                     "p99": round(ms["proxy"]["p99"] - ms["direct"]["p99"], 2)},
        "callbacks_per_s": {"proxy": round(proxied_rate, 1), "direct": round(straight_rate, 1)},
        "ratio_proxy_to_direct": round(proxied_rate / straight_rate, 2),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(f"proxy bench: {args.calls} ingestion callbacks each way, wrangler dev -> serve "
          f"(proxy mode) vs straight to serve; {os.cpu_count()} CPUs")
    print(f"  {'':<28} {'p50 ms':>8} {'p99 ms':>8} {'callbacks/s':>12}")
    for name, rate in (("through the proxy", proxied_rate), ("straight to serve", straight_rate)):
        key = "proxy" if name.startswith("through") else "direct"
        print(f"  {name:<28} {ms[key]['p50']:>8.2f} {ms[key]['p99']:>8.2f} {rate:>12.1f}")
    print(f"  {'the Worker answering alone':<28} {ms['worker_alone']['p50']:>8.2f} "
          f"{ms['worker_alone']['p99']:>8.2f} {'':>12}")
    print(f"  added by the proxy: p50 {figures['added_ms']['p50']:.2f} ms, "
          f"p99 {figures['added_ms']['p99']:.2f} ms; throughput ratio "
          f"{figures['ratio_proxy_to_direct']:.2f} (concurrency {args.concurrency})")


if __name__ == "__main__":
    main()
