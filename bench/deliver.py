"""Delivery throughput: one job's report to 5,000 generic webhooks on one local host.

    python bench/deliver.py [--endpoints 5000] [--repeat 3] [--limits 256:64,256:128,256:256]
                            [--profile] [--json]

- the sink: an aiohttp server on 127.0.0.1 in its own process (it must not share the
  GIL with the sender; the machine has 2 cores). `POST /hook/{n}` answers 200,
  `/flaky/{n}` 500 the first two times per path then 200, `/dead/{n}` always 500; it
  counts the requests per path, so each run checks that no send was lost or doubled;
- ours: `services.delivery.deliver(services, trace_id, resend=True)` on the embedded
  backend: a demo job (with its consolidated messages) and 5,000 signed webhook
  endpoints; in-flight marks, outcomes and endpoint health written as in production.
  Its time is split into the writes (`records.put_many`) and the rest; the engine alone
  (`Engine.run` on the same sends, nothing recorded) is timed too;
- bare: an aiohttp session posting the same body and webhook headers to the same paths,
  at the same concurrency: about the Python ceiling. The issue asks ours/bare ≥ 0.7;
- peak RSS of ours: one `deliver` in a fresh child process;
- failures: 4,450 healthy, 500 flaky and 50 dead endpoints, retries shortened to
  0.05 s and 0.1 s: every flaky send delivered after 3 attempts, every dead one failed
  after 3 with its error recorded, and the total time.

Every figure is the median of `--repeat` runs. The connection limits (concurrency :
per host) are swept with `--limits`; the default configuration (256 : 128) is always
among them. Homes are built in a temporary folder and removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from metric_stream.bootstrap import Services, build_services
from metric_stream.delivery.base import Outgoing
from metric_stream.delivery.channels import parse_channel
from metric_stream.delivery.engine import Engine, Job, Outcome
from metric_stream.models.config import RetryPolicy, SystemConfig
from metric_stream.models.delivery import DeliveryEndpoint, DeliveryStatus
from metric_stream.services.delivery import DeliveryRun, deliver
from metric_stream.settings import Settings
from metric_stream.signing import new_secret

FLAKY, DEAD = 500, 50
FLAKY_FAILURES = 2
SHORT_RETRIES = RetryPolicy(retries=2, delays_s=[0.05, 0.1])
DEFAULT_LIMITS = (256, 128)
T = TypeVar("T")


# ---------------------------------------------------------------- the sink (own process)
def run_sink(port: int) -> None:
    counts: dict[str, int] = {}
    signed = 0

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        nonlocal signed
        path = request.path
        if path == "/_counts":
            return web.json_response({"paths": counts, "signed": signed})
        if path == "/_reset":
            counts.clear()
            signed = 0
            return web.Response(text="ok")
        await request.read()
        seen = counts[path] = counts.get(path, 0) + 1
        signed += "webhook-signature" in request.headers
        failing = path.startswith("/dead/") or (path.startswith("/flaky/")
                                                and seen <= FLAKY_FAILURES)
        return web.Response(status=500 if failing else 200, text="ok")

    async def serve() -> None:
        runner = web.ServerRunner(web.Server(handle), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
        await asyncio.Event().wait()

    try:
        import uvloop  # the sink should not be what limits the sender

        uvloop.run(serve())
    except ImportError:
        asyncio.run(serve())


class Sink:
    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.process = subprocess.Popen([sys.executable, __file__, "--sink", str(self.port)])
        deadline = time.monotonic() + 30
        while True:
            try:
                self.reset()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the sink did not start") from None
                time.sleep(0.1)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url(path), timeout=10) as answer:  # noqa: S310
            return json.loads(answer.read()) if path == "/_counts" else None

    def reset(self) -> None:
        self._get("/_reset")

    def counts(self) -> tuple[dict[str, int], int]:
        answer = self._get("/_counts")
        return answer["paths"], answer["signed"]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@dataclass
class Check:
    """What the sink saw against what was expected: one request per path (or three)."""

    lost: int = 0
    doubled: int = 0

    def add(self, sink: Sink, expected: dict[str, int]) -> int:
        """Answers how many of the requests carried a `webhook-signature`."""
        counts, signed = sink.counts()
        self.lost += sum(1 for path, n in expected.items() if counts.get(path, 0) < n)
        self.doubled += sum(1 for path, n in expected.items() if counts.get(path, 0) > n)
        self.doubled += sum(n for path, n in counts.items() if path not in expected)
        return signed


# ---------------------------------------------------------------- homes
def home_paths(kind: str, endpoints: int) -> list[str]:
    if kind == "normal":
        return [f"/hook/{n}" for n in range(endpoints)]
    healthy = endpoints - FLAKY - DEAD
    return ([f"/hook/{n}" for n in range(healthy)]
            + [f"/flaky/{n}" for n in range(healthy, healthy + FLAKY)]
            + [f"/dead/{n}" for n in range(healthy + FLAKY, endpoints)])


def setup_home(home: Path, port: int, paths: Sequence[str]) -> str:
    """A demo job run end to end with no endpoint (so it has its consolidated messages),
    then the endpoints, written in one batch. Answers the job's trace id."""
    import httpx

    from metric_stream.services import cycle
    from metric_stream.services.runner import prepare_demo, run_cycle

    services = build_services(Settings(home=home))
    services.init()
    prepare_demo(services)
    with httpx.Client() as http:
        summary = run_cycle(services, cycle.Triggers(http), demo=True)
    now = services.clock.now()
    endpoints = [DeliveryEndpoint(id=f"bench-{n:05d}", name=f"bench webhook {n}",
                                  url=f"http://127.0.0.1:{port}{path}",
                                  signing_secret=new_secret(), created_at=now)
                 for n, path in enumerate(paths)]
    services.records.put_many([services.registry.endpoints.put_op(e) for e in endpoints])
    return summary.job.trace_id


PROCESSES = [0]  # delivery.processes for every run (0: one per CPU); --processes sets it


def set_limits(services: Services, concurrency: int, per_host: int,
               retry: RetryPolicy | None = None) -> SystemConfig:
    config = services.config.get()
    changes: dict[str, Any] = {"delivery": config.delivery.model_copy(
        update={"concurrency": concurrency, "per_host": per_host,
                "processes": PROCESSES[0]})}
    if retry is not None:
        changes["retry"] = config.retry.model_copy(update={"delivery": retry})
    return services.config.put(config.model_copy(update=changes), services.clock.now())


# ---------------------------------------------------------------- the three senders
@dataclass
class OursRun:
    run: DeliveryRun
    seconds: float
    writes_s: float
    gc_s: float


class GcTimer:
    """Time spent in the cyclic garbage collector while a `with` block runs."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started

    def __enter__(self) -> GcTimer:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)


def timed_writes(services: Services) -> Callable[[], float]:
    """Time spent writing records (`records.put_many` and `records.write`) from now on:
    the instance's methods, wrapped."""
    spent = [0.0]

    def timed(method: Callable[[Any], T]) -> Callable[[Any], T]:
        def wrapper(ops: Any) -> T:
            started = time.perf_counter()
            try:
                return method(ops)
            finally:
                spent[0] += time.perf_counter() - started
        return wrapper

    for name in ("put_many", "write"):
        setattr(services.records, name, timed(getattr(services.records, name)))
    return lambda: spent[0]


def ours(services: Services, trace_id: str, writes: Callable[[], float]) -> OursRun:
    before = writes()
    with GcTimer() as collector:
        started = time.perf_counter()
        run = deliver(services, trace_id, resend=True)
        seconds = time.perf_counter() - started
    return OursRun(run, seconds, writes() - before, collector.seconds)


def engine_jobs(services: Services, trace_id: str) -> list[Job]:
    """The sends `deliver` would make, built the same way."""
    consolidated = services.packages.consolidated(trace_id)
    document = services.packages.document(trace_id)
    assert consolidated is not None and consolidated.messages is not None
    timestamp = int(services.clock.now().timestamp())
    return [Job(Outgoing(trace_id=trace_id, endpoint_id=e.id, messages=consolidated.messages,
                         report_url=document.url if document else None,
                         signing_secret=e.signing_secret, timestamp=timestamp),
                parse_channel(e.url))
            for e in services.registry.endpoints.all()]


def engine_alone(services: Services, config: SystemConfig, jobs: list[Job]) -> tuple[float, int]:
    engine = Engine(services.settings, config.retry.delivery,
                    concurrency=config.delivery.concurrency, per_host=config.delivery.per_host,
                    timeout_s=config.delivery.timeout_s, jitter=config.delivery.jitter)
    outcomes: list[Outcome] = []
    started = time.perf_counter()
    asyncio.run(engine.run(jobs, outcomes.append))
    return time.perf_counter() - started, sum(o.result.ok for o in outcomes)


async def bare_loop(urls: Sequence[str], body: bytes, trace_id: str, concurrency: int) -> int:
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    slots = asyncio.Semaphore(concurrency)
    timestamp = str(int(time.time()))

    async with aiohttp.ClientSession(connector=connector) as session:
        async def one(n: int, url: str) -> bool:
            headers = {"content-type": "application/json", "user-agent": "bench",
                       "webhook-id": f"{trace_id}:bench-{n:05d}", "webhook-timestamp": timestamp}
            async with slots, session.post(url, data=body, headers=headers,
                                           allow_redirects=False) as response:
                await response.read()
                return response.status == 200

        return sum(await asyncio.gather(*(one(n, url) for n, url in enumerate(urls))))


def bare(urls: Sequence[str], body: bytes, trace_id: str, concurrency: int) -> tuple[float, int]:
    started = time.perf_counter()
    sent = asyncio.run(bare_loop(urls, body, trace_id, concurrency))
    return time.perf_counter() - started, sent


def webhook_body(services: Services, trace_id: str) -> bytes:
    consolidated = services.packages.consolidated(trace_id)
    assert consolidated is not None and consolidated.messages is not None
    payload = consolidated.messages.get("webhook") or {"traceId": trace_id}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


# ---------------------------------------------------------------- scenarios
def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def measure_limits(services: Services, sink: Sink, trace_id: str, concurrency: int,
                   per_host: int, repeat: int, writes: Callable[[], float],
                   paths: Sequence[str]) -> dict[str, Any]:
    config = set_limits(services, concurrency, per_host)
    expected = dict.fromkeys(paths, 1)
    urls = [sink.url(p) for p in paths]
    body = webhook_body(services, trace_id)
    jobs = engine_jobs(services, trace_id)
    check = Check()
    runs: list[OursRun] = []
    engine_s: list[float] = []
    bare_s: list[float] = []
    sent: list[int] = []
    signed: list[int] = []
    others: list[tuple[Callable[[], tuple[float, int]], list[float]]] = [
        (lambda: engine_alone(services, config, jobs), engine_s),
        (lambda: bare(urls, body, trace_id, min(concurrency, per_host)), bare_s)]
    for _ in range(repeat):  # interleaved, so load on the machine falls on all three
        sink.reset()
        runs.append(ours(services, trace_id, writes))
        sent.append(runs[-1].run.sent)
        signed.append(check.add(sink, expected))
        for sender, times in others:
            sink.reset()
            seconds, ok = sender()
            times.append(seconds)
            sent.append(ok)
            check.add(sink, expected)
    n = len(paths)
    ours_s = median([r.seconds for r in runs])
    return {
        "concurrency": concurrency, "per_host": per_host,
        "ours_per_s": round(n / ours_s), "ours_s": round(ours_s, 3),
        "ours_runs_per_s": [round(n / r.seconds) for r in runs],
        "writes_s": round(median([r.writes_s for r in runs]), 3),
        "gc_s": round(median([r.gc_s for r in runs]), 3),
        "engine_per_s": round(n / median(engine_s)), "engine_s": round(median(engine_s), 3),
        "bare_per_s": round(n / median(bare_s)), "bare_s": round(median(bare_s), 3),
        "ratio": round(median(bare_s) / ours_s, 2),
        "engine_ratio": round(median(bare_s) / median(engine_s), 2),
        "not_sent": sum(n - s for s in sent),
        "lost": check.lost, "doubled": check.doubled,
        "ours_signed": min(signed),
    }


def failure_scenario(home: Path, trace_id: str, sink: Sink, repeat: int) -> dict[str, Any]:
    services = build_services(Settings(home=home))
    set_limits(services, *DEFAULT_LIMITS, retry=SHORT_RETRIES)
    endpoints = {e.id: e for e in services.registry.endpoints.all()}
    kinds = {e.id: e.url.split("/")[3] for e in endpoints.values()}
    expected = {e.url.split(str(sink.port), 1)[1]: 1 if kinds[e.id] == "hook" else 3
                for e in endpoints.values()}
    figures: dict[str, list[float]] = {k: [] for k in (
        "seconds", "sent", "failed", "flaky_sent_3_attempts", "dead_failed_3_attempts",
        "dead_error_recorded", "dead_health_failing", "hook_sent_1_attempt",
        "sink_requests")}
    check = Check()
    for _ in range(repeat):
        before = {r.endpoint_id: r.attempts for r in services.deliveries.list(trace_id)}
        sink.reset()
        started = time.perf_counter()
        run = deliver(services, trace_id, resend=True)
        figures["seconds"].append(time.perf_counter() - started)
        counts, _ = sink.counts()
        check.add(sink, expected)
        records = {r.endpoint_id: r for r in services.deliveries.list(trace_id)}
        tried = {i: r.attempts - before.get(i, 0) for i, r in records.items()}
        figures["sent"].append(run.sent)
        figures["failed"].append(run.failed)
        figures["flaky_sent_3_attempts"].append(sum(
            1 for i, r in records.items() if kinds[i] == "flaky"
            and r.status is DeliveryStatus.SENT and tried[i] == 3))
        figures["dead_failed_3_attempts"].append(sum(
            1 for i, r in records.items() if kinds[i] == "dead"
            and r.status is DeliveryStatus.FAILED and tried[i] == 3))
        figures["dead_error_recorded"].append(sum(
            1 for i, r in records.items() if kinds[i] == "dead"
            and (r.last_error or "").startswith("HTTP 500") and r.last_status_code == 500))
        figures["dead_health_failing"].append(sum(
            1 for e in services.registry.endpoints.all() if kinds[e.id] == "dead"
            and e.active and e.health.consecutive_failures >= 1 and e.health.last_status == 500))
        figures["hook_sent_1_attempt"].append(sum(
            1 for i, r in records.items() if kinds[i] == "hook"
            and r.status is DeliveryStatus.SENT and tried[i] == 1))
        figures["sink_requests"].append(sum(counts.values()))
    healthy = len(endpoints) - FLAKY - DEAD
    return {"endpoints": len(endpoints), "healthy": healthy, "flaky": FLAKY, "dead": DEAD,
            "retry_delays_s": SHORT_RETRIES.delays_s,
            **{k: round(median(v), 3) if k == "seconds" else int(min(v))
               for k, v in figures.items()},
            "seconds_runs": [round(s, 3) for s in figures["seconds"]],
            "lost": check.lost, "doubled": check.doubled}


def profile(services: Services, trace_id: str, sink: Sink, top: int = 25) -> str:
    set_limits(services, *DEFAULT_LIMITS)
    sink.reset()
    profiler = cProfile.Profile()
    profiler.runcall(deliver, services, trace_id, resend=True)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(
        "metric_stream|sqlite3|pydantic|json|signing", top)
    return out.getvalue()


def child_peak(home: Path, trace_id: str) -> dict[str, Any]:
    """One `deliver` at the default limits, in this (fresh) process: its peak RSS."""
    services = build_services(Settings(home=home))
    set_limits(services, *DEFAULT_LIMITS)
    started = time.perf_counter()
    run = deliver(services, trace_id, resend=True)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": round(seconds, 3), "sent": run.sent, "peakRssMb": round(peak, 1)}


def in_child(*args: str) -> Any:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          check=False)
    if done.returncode:
        raise RuntimeError(f"{args[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "aiohttp": aiohttp.__version__,
            "load_average": [round(x, 2) for x in os.getloadavg()]}


# ---------------------------------------------------------------- main
def parse_limits(text: str) -> list[tuple[int, int]]:
    pairs = []
    for item in filter(None, text.split(",")):
        concurrency, _, per_host = item.partition(":")
        pairs.append((int(concurrency), int(per_host)))
    return pairs if DEFAULT_LIMITS in pairs else [DEFAULT_LIMITS, *pairs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoints", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--limits", default="256:64,256:128,256:256",
                        help="concurrency:per_host pairs to try (the default 256:128 always)")
    parser.add_argument("--profile", action="store_true",
                        help="also print cProfile's top functions of one deliver")
    parser.add_argument("--processes", type=int, default=0,
                        help="delivery.processes for ours (0: one per CPU, 1: one process)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--setup", nargs=3, metavar=("HOME", "PORT", "KIND"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--child", nargs=2, metavar=("HOME", "TRACE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    PROCESSES[0] = args.processes
    if args.sink:
        run_sink(args.sink)
        return
    if args.setup:
        home, port, kind = args.setup
        paths = home_paths(kind, args.endpoints)
        print(json.dumps({"traceId": setup_home(Path(home), int(port), paths)}))
        return
    if args.child:
        print(json.dumps(child_peak(Path(args.child[0]), args.child[1])))
        return

    root = Path(tempfile.mkdtemp(prefix="bench-deliver-"))
    sink = Sink()
    try:
        figures = run_bench(args, root, sink)
    finally:
        sink.stop()
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(figures))
    else:
        print_table(figures)


def run_bench(args: argparse.Namespace, root: Path, sink: Sink) -> dict[str, Any]:
    homes = {kind: root / kind for kind in ("normal", "failures")}
    traces = {kind: in_child("--setup", str(home), str(sink.port), kind,
                             "--endpoints", str(args.endpoints))["traceId"]
              for kind, home in homes.items()}
    # First, while this process is small: a child's peak RSS counts what it was forked from.
    peak = in_child("--child", str(homes["normal"]), traces["normal"])

    services = build_services(Settings(home=homes["normal"]))
    writes = timed_writes(services)
    paths = home_paths("normal", args.endpoints)
    ours(services, traces["normal"], writes)  # warm: imports, first connections
    limits = [measure_limits(services, sink, traces["normal"], concurrency, per_host,
                             args.repeat, writes, paths)
              for concurrency, per_host in parse_limits(args.limits)]
    default = next(x for x in limits if (x["concurrency"], x["per_host"]) == DEFAULT_LIMITS)
    best = max(limits, key=lambda x: x["ours_per_s"])
    figures: dict[str, Any] = {
        "endpoints": args.endpoints, "repeat": args.repeat,
        "payload_bytes": len(webhook_body(services, traces["normal"])),
        "default": default, "best": best, "limits": limits,
        "peak_rss_mb": peak["peakRssMb"], "peak_rss_child": peak,
        "failures": failure_scenario(homes["failures"], traces["failures"], sink, args.repeat),
        "processes": args.processes, "machine": machine(),
    }
    if args.profile:
        figures["profile"] = profile(services, traces["normal"], sink)
    return figures


def print_table(figures: dict[str, Any]) -> None:
    n = figures["endpoints"]
    print(f"delivery bench: {n} generic webhooks on one local sink (keep-alive), "
          f"{figures['payload_bytes']:,} B body, median of {figures['repeat']}")
    print(f"  {'concurrency:per_host':<21} {'ours/s':>7} {'engine/s':>9} {'bare/s':>7} "
          f"{'ours/bare':>9} {'ours s':>7} {'writes s':>8} {'gc s':>6} {'lost':>5} {'doubled':>7}")
    for x in figures["limits"]:
        mark = " (default)" if x == figures["default"] else ""
        print(f"  {str(x['concurrency']) + ':' + str(x['per_host']) + mark:<21} "
              f"{x['ours_per_s']:>7,} {x['engine_per_s']:>9,} {x['bare_per_s']:>7,} "
              f"{x['ratio']:>9.2f} {x['ours_s']:>7.3f} {x['writes_s']:>8.3f} {x['gc_s']:>6.3f} "
              f"{x['lost']:>5} {x['doubled']:>7}")
    best, default = figures["best"], figures["default"]
    rest = default["ours_s"] - default["writes_s"] - default["engine_s"]
    rows = [
        ("ours, default limits", f"{default['ours_per_s']:,}/s  (runs "
         f"{', '.join(f'{r:,}' for r in default['ours_runs_per_s'])}); target >= 5,000/s"),
        ("ours, best limits", f"{best['ours_per_s']:,}/s at {best['concurrency']}:"
         f"{best['per_host']}; bare {best['bare_per_s']:,}/s; ratio {best['ratio']:.2f}"),
        ("ratio ours/bare, default", f"{default['ratio']:.2f}  (target >= 0.7); engine "
         f"alone/bare {default['engine_ratio']:.2f}"),
        ("split of ours, default", f"{default['ours_s']:.3f} s = writes "
         f"{default['writes_s']:.3f} + engine ~{default['engine_s']:.3f} + rest ~{rest:.3f}; "
         f"garbage collector {default['gc_s']:.3f} s in all"),
        ("peak RSS, ours (fresh process)", f"{figures['peak_rss_mb']} MB (target <= 200 MB)"),
        ("ours: signed requests", f"{default['ours_signed']:,} of {n:,}"),
    ]
    f = figures["failures"]
    rows += [
        ("failures: endpoints", f"{f['healthy']:,} healthy, {f['flaky']} flaky (500 x2), "
         f"{f['dead']} dead; retries after {f['retry_delays_s']} s"),
        ("failures: total time", f"{f['seconds']:.3f} s  (runs {f['seconds_runs']})"),
        ("failures: sent / failed", f"{f['sent']:,} / {f['failed']}"),
        ("failures: flaky sent in 3", f"{f['flaky_sent_3_attempts']} of {f['flaky']}"),
        ("failures: dead failed in 3", f"{f['dead_failed_3_attempts']} of {f['dead']}, "
         f"error recorded {f['dead_error_recorded']}, endpoint health failing "
         f"{f['dead_health_failing']}"),
        ("failures: healthy sent in 1", f"{f['hook_sent_1_attempt']:,} of {f['healthy']:,}"),
        ("failures: sink requests", f"{f['sink_requests']:,}; lost {f['lost']}, "
         f"doubled {f['doubled']}"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    m = figures["machine"]
    processes = figures["processes"] or f"one per CPU ({min(m['cpus'] or 1, 4)})"
    print(f"  sending processes (ours): {processes}")
    print(f"  machine: {m['cpus']} CPUs, Python {m['python']}, aiohttp {m['aiohttp']}, "
          f"load {m['load_average']}")
    if "profile" in figures:
        print(figures["profile"])


if __name__ == "__main__":
    main()
