"""`metric-stream run`: one whole cycle now, with progress, and its outcome."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import timedelta
from typing import Any

from metric_stream.cli.common import bounded_int, settings_from

DEMO_BANNER = "DEMO — simulated market data, not real prices"


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "run", help="run one whole cycle now and print its outcome",
        description="Collect every active KPI (or --kpis), wait for the results, run the "
                    "analysis, packaging and delivery stages, and print the outcome. "
                    "Exit code: 0 complete, 3 partial, 4 failed or not finished.")
    parser.add_argument("--demo", action="store_true",
                        help="use the built-in demo market (no network, no account), in its "
                             "own store under HOME/demo; everything is marked DEMO")
    parser.add_argument("--kpis", metavar="ID,ID",
                        help="only these KPIs (registry entry ids or KPI ids), comma-separated")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--wait", type=bounded_int(1, 7 * 24 * 3600, "seconds"), metavar="S",
                        help="stop waiting after S seconds (default: the job's own timeout "
                             "plus its stages)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import httpx

    from metric_stream.bootstrap import build_services
    from metric_stream.services import cycle
    from metric_stream.services.runner import prepare_defaults, prepare_demo, run_cycle

    settings = settings_from(args)
    if args.demo:
        settings = settings.model_copy(update={"home": settings.home / "demo"})
    services = build_services(settings)
    services.init()
    out = Output(json_mode=args.json)
    if args.demo:
        out.line(DEMO_BANNER)
        seeded = prepare_demo(services)
        if seeded:
            out.line(f"demo store {settings.home.resolve()}: {len(services.registry.kpis.ids())} "
                     f"KPI entries, {seeded:,} history points")
    else:
        added = prepare_defaults(services)
        if added:
            out.line(f"empty registry: added the {len(added)} default KPI entries")
    kpis = [k.strip() for k in args.kpis.split(",") if k.strip()] if args.kpis else None
    wait = timedelta(seconds=args.wait) if args.wait else None
    with httpx.Client(timeout=10, follow_redirects=False) as http:
        summary = run_cycle(services, cycle.Triggers(http), kpis=kpis, demo=args.demo,
                            progress=out.progress, wait=wait)
    out.done()
    body = summary.to_wire()
    if args.json:
        print(json.dumps(body, indent=2))
    else:
        print_summary(body, summary.job.partial)
    return summary.exit_code


class Output:
    """Live progress on a terminal (rich), plain lines otherwise, nothing with --json."""

    def __init__(self, *, json_mode: bool) -> None:
        self.json_mode = json_mode
        self.live: Any = None
        self.started = time.monotonic()
        if not json_mode and sys.stdout.isatty():
            from rich.live import Live

            self.live = Live(refresh_per_second=8, transient=True)
            self.live.start()

    def line(self, text: str) -> None:
        from metric_stream.logs import active_format, notice

        if self.json_mode and active_format() == "json":
            notice(text)  # stderr holds JSON lines only
        elif self.json_mode:
            print(text, file=sys.stderr)
        elif self.live is not None:
            self.live.console.print(text)
        else:
            print(text, flush=True)

    def progress(self, job: Any, note: str) -> None:
        from metric_stream.models.job import KpiStatus

        collected = len(job.with_status(KpiStatus.COLLECTED))
        failed = len(job.with_status(KpiStatus.FAILED)) + len(job.with_status(KpiStatus.TIMED_OUT))
        pending = len(job.with_status(KpiStatus.PENDING))
        elapsed = time.monotonic() - self.started
        text = (f"{job.trace_id}  {job.status.value:<10}  collected {collected}  "
                f"failed {failed}  pending {pending}  {elapsed:5.1f} s")
        if self.live is not None:
            from rich.text import Text

            self.live.update(Text(text))
        elif not self.json_mode:
            print(text, flush=True)

    def done(self) -> None:
        if self.live is not None:
            self.live.stop()


def print_summary(body: dict[str, Any], partial: bool) -> None:
    demo = " (DEMO)" if body["demo"] else ""
    print(f"\njob {body['traceId']}{demo}: {body['status'].upper()} in {body['seconds']:.2f} s")
    kpis = body["kpis"]
    print(f"  KPIs: {kpis['collected']}/{kpis['total']} collected, {len(kpis['failed'])} failed")
    for kpi_id, reason in sorted(kpis["failed"].items()):
        print(f"    - {kpi_id}: {reason}")
    analysis = body.get("analysis")
    if analysis:
        movers = analysis["topMovers"]["1d"][:3]
        moves = ", ".join(f"{m['kpiId']} {m['percent']:+.2f}%" for m in movers) or "none"
        print(f"  analysis: {len(analysis['alerts'])} alert(s), "
              f"{len(analysis['outliers'])} outlier(s); top movers (1 day): {moves}")
        for alert in analysis["alerts"][:5]:
            print(f"    ! {alert['kpiId']}: {alert['kind']} threshold {alert['threshold']:g} "
                  f"crossed ({alert['value']:g})")
    llm = body.get("llm")
    if llm:
        print(f"  LLM analysis: {llm['status']}" + (
            f" ({llm.get('chainsOk', 0)} readings, {llm.get('chainsFailed', 0)} failed, "
            f"{llm.get('inputTokens', 0) + llm.get('outputTokens', 0):,} tokens)"
            if llm["status"] not in ("off", "skipped") else
            f" ({llm.get('reason', '')})" if llm.get("reason") else ""))
    report = body["report"]
    if report:
        pages = f"{report['pages']} pages, " if report.get("pages") else ""
        print(f"  report: {report.get('url') or report['blobKey']} ({pages}{report['bytes']:,} "
              "bytes)")
    else:
        print("  report: none (the job did not reach the end of the packaging stage)")
    sent = sum(1 for d in body["deliveries"] if d.get("status") == "sent")
    failed = sum(1 for d in body["deliveries"] if d.get("status") == "failed")
    print(f"  deliveries: {sent} sent, {failed} failed")
    if body["stillRunning"]:
        print("  stopped waiting: the job is still running (see `metric-stream run --help`)")
