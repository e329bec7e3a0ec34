"""The whole daily cycle, as a user runs it: `metric-stream run --demo` on the embedded
backend with 200 demo KPIs (365 days of history each, seeded before the timed run), no
LLM, and 5,000 generic-webhook endpoints on a local sink (its own process).

    python bench/cycle.py [--kpis 200] [--endpoints 5000] [--days 365] [--repeat 3] [--json]
    python bench/cycle.py --emulate-aws [--kpis 20] [--endpoints 200] [--days 30]

Timed: the wall time of the `metric-stream run` process, from its start to its exit (the
interpreter, the collection of today's point for every KPI, fan-in, analysis, charts,
the PDF, and every delivery). Printed beside it: each stage's time from the job record,
the peak RSS of the largest process (the run, or a delivery shard it forks), and the
checks: today's point stored once per KPI and the history intact, the PDF present with a
section per KPI, every endpoint's delivery recorded as sent, and the sink hit exactly
once per endpoint (none lost, none doubled). Each repeat starts from a fresh copy of the
seeded store.

`--emulate-aws` runs the same on the AWS adapters against a moto server on loopback
(`serve --emulate-aws`'s emulation), at a smaller size: moto's DynamoDB slows down as its
tables grow (its cost, not ours).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from deliver import Sink  # noqa: E402 (bench/deliver.py: the sink in its own process)

from metric_stream.bootstrap import Services, build_services  # noqa: E402
from metric_stream.collectors.demo import demo_registry, seed_history  # noqa: E402
from metric_stream.models.delivery import DeliveryEndpoint  # noqa: E402
from metric_stream.settings import Settings  # noqa: E402
from metric_stream.signing import new_secret  # noqa: E402


def seed(settings: Settings, kpis: int, days: int, endpoints: int, sink: Sink) -> dict[str, int]:
    """The demo store `run --demo` uses, filled: registry, history up to yesterday, endpoints."""
    services = build_services(settings)
    services.init()
    entries = demo_registry(kpis)
    now = datetime.now(UTC)
    for entry in entries:
        services.registry.kpis.create(entry.stamped(now))
    points = seed_history(services, entries, days, (now - timedelta(days=1)).date())
    hooks = [DeliveryEndpoint(id=f"hook-{n:05d}", name=f"Receiver {n}",
                              url=sink.url(f"/hook/{n}"), signing_secret=new_secret())
             for n in range(endpoints)]
    puts = [services.registry.endpoints.put_op(e) for e in hooks]
    for start in range(0, len(puts), 500):
        services.records.put_many(puts[start:start + 500])
    return {"points": points, "kpi_ids": sum(len(e.yields) for e in entries)}


def run_once(home: Path, env: dict[str, str], profile: Path | None = None
             ) -> tuple[float, dict[str, Any], float]:
    """`metric-stream run --demo --json`: wall seconds, its summary, peak RSS in MB; under
    pyinstrument (its text report written to `profile`) if asked."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    profiler = ["-m", "pyinstrument", "-r", "text", "--show-all", "-o", str(profile)
                ] if profile else []
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *profiler, "-m", "metric_stream.cli.main", "--home",
                           str(home), "run", "--demo", "--json"], env=env, capture_output=True,
                          text=True, check=False)
    wall = time.perf_counter() - started
    peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    if done.returncode not in (0, 3):
        raise SystemExit(f"metric-stream run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall, json.loads(done.stdout), peak


def stage_seconds(summary: dict[str, Any]) -> dict[str, float]:
    seconds = {}
    for name, timing in summary["stages"].items():
        if timing["finishedAt"]:
            seconds[name] = round((datetime.fromisoformat(timing["finishedAt"])
                                   - datetime.fromisoformat(timing["startedAt"]))
                                  .total_seconds(), 3)
    return seconds


def check(services: Services, summary: dict[str, Any],
          sink: Sink, endpoints: int, days: int) -> dict[str, Any]:
    """What must hold after the run; each check's value, and whether all passed."""
    from pypdf import PdfReader

    trace_id = summary["traceId"]
    job = services.jobs.require(trace_id)
    today = job.created_at.date()
    stored_today = 0
    history_ok = True
    for kpi_id in job.kpi_ids:
        points = services.timeseries.points(kpi_id)
        stored_today += sum(1 for p in points if p.timestamp.date() == today)
        history_ok &= len(points) == days + 1
    document = services.packages.document(trace_id)
    sections = 0
    if document is not None:
        reader = PdfReader(io.BytesIO(services.blobs.get(document.blob_key)))
        outline = reader.outline  # [cover, [summary], "Indicators", [a section per KPI], ...]
        titles = [item.title for item in outline if not isinstance(item, list)]
        if "Indicators" in titles:
            at = outline.index(next(i for i in outline if not isinstance(i, list)
                                    and i.title == "Indicators"))
            following = outline[at + 1] if at + 1 < len(outline) else []
            sections = len(following) if isinstance(following, list) else 0
    records = services.deliveries.list(trace_id)
    sent = sum(1 for r in records if r.status.value == "sent")
    hits, signed = sink.counts()
    doubled = sum(1 for count in hits.values() if count > 1)
    figures = {
        "status": summary["status"], "kpis": len(job.kpi_ids),
        "today_points": stored_today, "history_intact": history_ok,
        "pdf_sections": sections, "pdf_pages": document.pages if document else 0,
        "deliveries_sent": sent, "sink_paths": len(hits), "sink_doubled": doubled,
        "sink_signed": signed,
    }
    figures["ok"] = (summary["status"] == "complete" and stored_today == len(job.kpi_ids)
                     and history_ok and sections >= len(job.kpi_ids) and sent == endpoints
                     and len(hits) == endpoints and doubled == 0)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kpis", type=int)
    parser.add_argument("--endpoints", type=int)
    parser.add_argument("--days", type=int)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--emulate-aws", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="run under pyinstrument (pip install pyinstrument) and write its "
                             "text report of the main process to FILE (the figures then "
                             "include its overhead)")
    args = parser.parse_args()
    aws = args.emulate_aws
    kpis = args.kpis or (20 if aws else 200)
    endpoints = args.endpoints if args.endpoints is not None else (200 if aws else 5000)
    days = args.days or (30 if aws else 365)
    runs: list[dict[str, Any]] = []
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-cycle-")))
        sink = Sink()
        stack.callback(sink.stop)
        env = {**os.environ, "METRIC_STREAM_BACKEND": "aws" if aws else "embedded"}
        for name in ("ANTHROPIC_API_KEY", "GEMINI_API_KEY", "OPENROUTER_API_KEY"):
            env.pop(name, None)  # no LLM
        endpoint_url = None
        if aws:
            from metric_stream.server.emulate import FAKE_CREDENTIALS, emulated_aws

            endpoint_url = stack.enter_context(emulated_aws())
            env.update({**FAKE_CREDENTIALS, "METRIC_STREAM_AWS_ENDPOINT_URL": endpoint_url,
                        "METRIC_STREAM_OUTBOUND_ALLOW_LOOPBACK": "true"})
        for n in range(args.repeat):
            sink.reset()
            seed_home = folder / f"home-{n}"
            options: dict[str, Any] = {"home": seed_home / "demo"}
            if aws:
                options.update(backend="aws", aws_endpoint_url=endpoint_url,
                               table_name=f"bench-cycle-{n}", bucket_name=f"bench-cycle-{n}",
                               queue_prefix=f"bench-cycle-{n}-")
                env.update({"METRIC_STREAM_TABLE_NAME": f"bench-cycle-{n}",
                            "METRIC_STREAM_BUCKET_NAME": f"bench-cycle-{n}",
                            "METRIC_STREAM_QUEUE_PREFIX": f"bench-cycle-{n}-"})
                os.environ.update(FAKE_CREDENTIALS)
            settings = Settings(**options)
            started = time.perf_counter()
            seeded = seed(settings, kpis, days, endpoints, sink)
            if seeded["kpi_ids"] != kpis:
                raise SystemExit(f"the demo registry yields {seeded['kpi_ids']} KPIs, not {kpis}")
            seed_s = time.perf_counter() - started
            wall, summary, peak = run_once(seed_home, env, args.profile)
            checks = check(build_services(settings), summary, sink, endpoints, days)
            runs.append({"wall_s": round(wall, 3), "run_reported_s": summary["seconds"],
                         "stages_s": stage_seconds(summary), "peak_rss_mb": round(peak, 1),
                         "seed_s": round(seed_s, 1), "checks": checks})
            if not aws:
                shutil.rmtree(seed_home, ignore_errors=True)
    walls = [r["wall_s"] for r in runs]
    figures = {
        "backend": "aws (moto server on loopback)" if aws else "embedded",
        "kpis": kpis, "days": days, "endpoints": endpoints, "repeat": args.repeat,
        "wall_s_median": round(statistics.median(walls), 3), "wall_s": walls,
        "stages_s_median": {name: round(statistics.median(r["stages_s"].get(name, 0.0)
                                                          for r in runs), 3)
                            for name in runs[0]["stages_s"]},
        "peak_rss_mb_max": max(r["peak_rss_mb"] for r in runs),
        "checks_ok": all(r["checks"]["ok"] for r in runs), "runs": runs,
        "target_s": None if aws else 5.0,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average": [round(x, 2) for x in os.getloadavg()]},
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(f"cycle bench ({figures['backend']}): `metric-stream run --demo`, {kpis} KPIs x "
          f"{days} days, {endpoints:,} webhook endpoints, no LLM; {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}")
    print(f"  wall time, process start to exit: median {figures['wall_s_median']:.2f} s of "
          f"{walls}" + ("  (target <= 5 s)" if not aws else ""))
    print("  stages (job record, median): " + ", ".join(
        f"{k} {v:.2f} s" for k, v in figures["stages_s_median"].items()))
    print(f"  peak RSS of the largest process: {figures['peak_rss_mb_max']:.0f} MB")
    last = runs[-1]["checks"]
    print(f"  checks: {'all passed' if figures['checks_ok'] else 'FAILED'} — status "
          f"{last['status']}, today's points {last['today_points']}/{last['kpis']}, history "
          f"{'intact' if last['history_intact'] else 'NOT intact'}, PDF {last['pdf_sections']} "
          f"sections / {last['pdf_pages']} pages, deliveries sent {last['deliveries_sent']:,}, "
          f"sink {last['sink_paths']:,} paths, doubled {last['sink_doubled']}")


if __name__ == "__main__":
    main()
