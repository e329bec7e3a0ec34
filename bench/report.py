"""The report for 200 KPIs with 365 days each: analytics, then charts + PDF, ours next to
the naive approach (one matplotlib PNG per KPI, embedded in the same PDF).

    .venv/bin/python bench/report.py [--kpis N] [--days N] [--repeat N] [--json]

- analytics: `analyse_series` for every KPI and the cross-KPI view (alerts, top
  movers, 30/90-day correlations), as the analysis stage runs them;
- ours: `render_pdf` with every chart drawn as vectors straight onto the page;
- naive: the same PDF with each chart rendered by matplotlib as a PNG and embedded,
  single-process and with the PNGs rendered by two processes;
- peak RSS of ours, measured in a fresh child process (analytics + charts + PDF).

Every variant is timed `--repeat` times; medians are reported. No storage is touched:
the inputs are built in memory (a deterministic random walk per KPI, with thresholds).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from metric_stream.analytics import analyse_series
from metric_stream.charts.render import ChartSpec, render_chart
from metric_stream.models.kpi import Thresholds
from metric_stream.models.timeseries import DataPoint
from metric_stream.report.content import KpiSection, ReportData
from metric_stream.report.pdf import RenderedPdf, render_pdf
from metric_stream.services.analysis import KpiInput, cross_analytics

NOW = datetime(2026, 11, 29, tzinfo=UTC)
THRESHOLDS = Thresholds(high=160, low=55)


def make_series(kpis: int, days: int) -> dict[str, list[DataPoint]]:
    rng = random.Random(7)
    series = {}
    for k in range(kpis):
        kpi_id = f"bench-kpi-{k:03d}"
        value, points = 100.0, []
        for d in range(days):
            value *= math.exp(rng.gauss(0.0005, 0.03))
            points.append(DataPoint(kpi_id=kpi_id, timestamp=NOW - timedelta(days=days - 1 - d),
                                    value=round(value, 4)))
        series[kpi_id] = points
    return series


def analyse(series: dict[str, list[DataPoint]]) -> tuple[dict[str, KpiInput], dict[str, Any]]:
    inputs = {k: KpiInput(k, k, None, p, analyse_series(p, thresholds=THRESHOLDS, now=NOW))
              for k, p in series.items()}
    return inputs, cross_analytics(inputs)


def report_of(inputs: dict[str, KpiInput], cross: dict[str, Any]) -> ReportData:
    sections = []
    for kpi_id, item in inputs.items():
        spec = ChartSpec(title=kpi_id, series={kpi_id: [(p.timestamp, p.value)
                                                        for p in item.points]},
                         unit="USD", high=THRESHOLDS.high, low=THRESHOLDS.low)
        sections.append(KpiSection(kpi_id=kpi_id, name=f"Benchmark indicator {kpi_id}",
                                   value=item.points[-1].value, timestamp=NOW,
                                   analytics=item.analytics.to_wire(), unit="USD",
                                   source="bench", chart=spec))
    return ReportData(trace_id="trace_20261129_000000_bench0", created_at=NOW,
                      status="complete", sections=sections, consolidated=cross,
                      names={k: f"Benchmark indicator {k}" for k in inputs})


def png(spec: ChartSpec) -> bytes:
    return render_chart(spec, fmt="png")


def naive(report: ReportData, workers: int) -> RenderedPdf:
    specs = [s.chart for s in report.sections if s.chart is not None]
    if workers == 1:
        images = [png(spec) for spec in specs]
    else:
        with ProcessPoolExecutor(workers) as pool:
            images = list(pool.map(png, specs, chunksize=8))
    return render_pdf(report, images={s.kpi_id: i for s, i in zip(report.sections, images,
                                                                   strict=True)})


def timed(work: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def child_peak(kpis: int, days: int) -> dict[str, float]:
    """Analytics + charts + PDF once, in this (fresh) process: its peak RSS."""
    series = make_series(kpis, days)
    started = time.perf_counter()
    inputs, cross = analyse(series)
    rendered = render_pdf(report_of(inputs, cross))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peakRssMb": round(peak, 1), "bytes": len(rendered.data)}


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kpis", type=int, default=200)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_peak(args.kpis, args.days)))
        return

    # First, while this process is small: a child's peak RSS counts what it was forked from.
    child = subprocess.run([sys.executable, __file__, "--child", "--kpis", str(args.kpis),
                            "--days", str(args.days)], capture_output=True, text=True,
                           check=True)
    peak = json.loads(child.stdout)
    series = make_series(args.kpis, args.days)
    render_pdf(report_of(*analyse({k: v[:40] for k, v in list(series.items())[:3]})))  # warm
    analytics_s, (inputs, cross) = timed(lambda: analyse(series), args.repeat)
    report = report_of(inputs, cross)
    ours_s, ours = timed(lambda: render_pdf(report), args.repeat)
    naive1_s, naive1 = timed(lambda: naive(report, 1), args.repeat)
    naive2_s, _ = timed(lambda: naive(report, 2), args.repeat)
    figures = {
        "kpis": args.kpis, "days": args.days, "repeat": args.repeat,
        "analytics_s": round(analytics_s, 3),
        "charts_pdf_s": round(ours_s, 3),
        "charts_per_s": round(args.kpis / ours_s, 1),
        "pdf_pages": ours.pages, "pdf_mb": round(len(ours.data) / 1e6, 2),
        "naive_1proc_s": round(naive1_s, 3),
        "naive_2proc_s": round(naive2_s, 3),
        "naive_pdf_mb": round(len(naive1.data) / 1e6, 2),
        "ratio_naive_1proc": round(naive1_s / ours_s, 2),
        "ratio_naive_2proc": round(naive2_s / ours_s, 2),
        "peak_rss_mb": peak["peakRssMb"],
        "machine": machine(),
    }
    if args.json:
        print(json.dumps(figures))
        return
    rows = [
        ("analytics (200 series + cross-KPI)", f"{figures['analytics_s']:.3f} s"),
        ("charts + PDF, ours (vector)", f"{figures['charts_pdf_s']:.3f} s"),
        ("charts per second, ours", f"{figures['charts_per_s']}"),
        ("PDF", f"{figures['pdf_pages']} pages, {figures['pdf_mb']} MB"),
        ("naive: matplotlib PNGs, 1 process", f"{figures['naive_1proc_s']:.3f} s"),
        ("naive: matplotlib PNGs, 2 processes", f"{figures['naive_2proc_s']:.3f} s"),
        ("naive PDF size", f"{figures['naive_pdf_mb']} MB"),
        ("ratio naive 1-proc / ours", f"{figures['ratio_naive_1proc']}x"),
        ("ratio naive 2-proc / ours", f"{figures['ratio_naive_2proc']}x"),
        ("peak RSS, ours (fresh process)", f"{figures['peak_rss_mb']} MB"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"report bench: {args.kpis} KPIs x {args.days} days, median of {args.repeat}")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    print(f"  machine: {figures['machine']['cpus']} CPUs, Python {figures['machine']['python']}")


if __name__ == "__main__":
    main()
