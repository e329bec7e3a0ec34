"""The analysis stage (SPEC step 4), for every collected KPI of a job:

1. the deterministic analytics, and across KPIs the alerts, top movers and correlations;
2. the charts, stored in the blob store before any LLM step (so the image step sees
   them): a PNG where an image step will read it, else the vector SVG (cheap);
3. where an LLM is configured, the analysis chain per KPI (at most
   `llm.concurrency` at a time, within the job's token budget) and the consolidated
   chain across KPIs. A chain that fails leaves its KPI without an LLM reading, and the
   failure is recorded in the consolidated package; with no key, no call is made.

Per-KPI results are written to the job's packages (idempotent puts); the consolidated
package is the stage's done-record, committed with the job's move on.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from metric_stream.analytics import (
    SeriesAnalytics,
    analyse_series,
    correlations,
    daily_values,
    top_movers,
)
from metric_stream.bootstrap import Services
from metric_stream.charts.render import ChartSpec, chart_for_kpi
from metric_stream.logs import ContextThreadPool
from metric_stream.models.config import AnalysisChain, Provider, SystemConfig
from metric_stream.models.job import Job
from metric_stream.models.kpi import KpiDefinition
from metric_stream.models.report import ConsolidatedPackage
from metric_stream.models.timeseries import DataPoint
from metric_stream.ports import Op, Put
from metric_stream.storage import keys
from metric_stream.storage.collection import to_item

if TYPE_CHECKING:
    from metric_stream.llm import ChainResult, LLMClient, TokenBudget

log = logging.getLogger(__name__)

HISTORY = timedelta(days=400)  # a year of history, and the 30-day windows before it
TOP_CORRELATIONS = 20
MAX_FAILURES_KEPT = 50
MAX_GAPS_FOR_LLM = 10


@dataclass(frozen=True)
class KpiInput:
    kpi_id: str
    name: str
    entry: KpiDefinition | None
    points: list[DataPoint]
    analytics: SeriesAnalytics


def display_name(entry: KpiDefinition | None, kpi_id: str) -> str:
    if entry is None:
        return kpi_id
    return entry.name if kpi_id == entry.id else f"{entry.name} — {kpi_id}"


def analyse_job(services: Services, job: Job) -> Sequence[Op]:
    config = services.config.get()
    sources = services.registry.kpi_sources()
    packages = {p.kpi_id: p for p in services.packages.list(job.trace_id)}
    inputs: dict[str, KpiInput] = {}
    for kpi_id in job.kpi_ids:
        if kpi_id not in packages:
            continue  # failed or timed out: the report says so
        points = services.timeseries.points(kpi_id, start=job.created_at - HISTORY,
                                            end=job.created_at + timedelta(days=1))
        entry = sources.get(kpi_id)
        thresholds = entry.thresholds_for(kpi_id) if entry else None
        inputs[kpi_id] = KpiInput(kpi_id, display_name(entry, kpi_id), entry, points,
                                  analyse_series(points, thresholds=thresholds,
                                                 now=job.created_at))
    cross = cross_analytics(inputs)

    clients, http = _llm_clients(services)
    try:
        plans = {k: _chain_for(config, i.entry, clients) for k, i in inputs.items()}
        wants_image = {k: _has_image_step(c, clients) for k, c in plans.items()}
        chart_keys, images = store_charts(services, job, config, inputs, wants_image)
        readings, overview = run_chains(services, config, inputs, plans, clients, images,
                                        cross, job)
    finally:
        if http is not None:
            http.close()

    now = services.clock.now()
    services.records.put_many([
        Put(keys.package(job.trace_id, kpi_id), to_item(packages[kpi_id].model_copy(update={
            "analytics": item.analytics.to_wire(), "chart_key": chart_keys.get(kpi_id),
            "analysis": readings.get(kpi_id), "updated_at": now})))
        for kpi_id, item in inputs.items()])
    llm = llm_summary(readings, overview, clients, config)
    consolidated = ConsolidatedPackage(
        trace_id=job.trace_id, kpi_ids=list(job.kpi_ids), missing_kpi_ids=job.missing,
        created_at=now, analytics=cross, analysis={"overview": overview, "llm": llm})
    log.info("job %s: analysed %d KPI(s): %d alert(s), %d chart(s); LLM analysis %s",
             job.trace_id, len(inputs), len(cross.get("alerts") or ()), len(chart_keys),
             llm["status"])
    return [Put(keys.consolidated(job.trace_id), to_item(consolidated))]


def cross_analytics(inputs: Mapping[str, KpiInput]) -> dict[str, Any]:
    analytics = {k: i.analytics for k, i in inputs.items()}
    series = {k: i.points for k, i in inputs.items()}
    alerts = [{"kpiId": kpi_id, **alert.to_wire()}
              for kpi_id, result in analytics.items() for alert in result.alerts]
    daily = daily_values(series)
    return {
        "alerts": alerts,
        "outliers": [k for k, r in analytics.items() if r.outlier],
        "topMovers": {f"{w}d": [m.to_wire() for m in top_movers(analytics, w, 5,
                                                                alerts_first=True)]
                      for w in (1, 7, 30)},
        "correlations": {f"{d}d": [c.to_wire() for c in correlations(
            series, d, limit=TOP_CORRELATIONS, daily=daily)] for d in (30, 90)},
    }


# ---------------------------------------------------------------- charts
def chart_spec(item: KpiInput, demo: bool) -> ChartSpec:
    if item.entry is None:
        return ChartSpec(title=item.name,
                         series={item.kpi_id: [(p.timestamp, p.value) for p in item.points]},
                         demo=demo)
    return chart_for_kpi(item.entry, item.kpi_id, item.points, demo=demo)


def store_charts(services: Services, job: Job, config: SystemConfig,
                 inputs: Mapping[str, KpiInput], wants_image: Mapping[str, bool]
                 ) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    """Each KPI's chart in the blob store (with the configured retries and fallback):
    chart ids by KPI, and the PNG bytes of those an image step will read."""
    from metric_stream.charts.scene import build_scene, scene_svg
    from metric_stream.services.charts import job_chart_id, store_chart

    def vector(spec: ChartSpec, fmt: str) -> bytes:
        return scene_svg(build_scene(spec), spec.title)

    def store(kpi_id: str, spec: ChartSpec) -> tuple[str, tuple[str, bytes] | None]:
        needs_image = wants_image.get(kpi_id, False)
        record = store_chart(
            services, spec, fmt="png" if needs_image else "svg",
            chart_id=job_chart_id(job.trace_id, kpi_id), kpi_id=kpi_id,
            trace_id=job.trace_id, policy=config.retry.chart, fallback=config.fallback,
            render=None if needs_image else vector)
        if needs_image and not record.fallback:
            return record.chart_id, ("image/png", services.blobs.get(record.blob_key))
        return record.chart_id, None

    specs = {kpi_id: chart_spec(item, job.demo) for kpi_id, item in inputs.items()}
    # two at a time: one is drawn while the other's blob is written (and synced)
    with ContextThreadPool(max_workers=2, thread_name_prefix="chart") as pool:
        stored = {k: pool.submit(store, k, spec) for k, spec in specs.items()}
    chart_keys: dict[str, str] = {}
    images: dict[str, tuple[str, bytes]] = {}
    for kpi_id, future in stored.items():
        chart_keys[kpi_id], image = future.result()
        if image is not None:
            images[kpi_id] = image
    store_report_charts(services, job, {k: specs[k] if inputs[k].entry and inputs[k].points
                                        else None for k in inputs})
    return chart_keys, images


def report_charts_key(trace_id: str) -> str:
    return keys.stage_file(trace_id, "chart-specs.json")


def store_report_charts(services: Services, job: Job,
                        specs: Mapping[str, ChartSpec | None]) -> None:
    """The charts the report will draw, as the analysis built them (see `charts.wire`)."""
    from metric_stream.charts.wire import specs_to_json

    try:
        services.blobs.put(report_charts_key(job.trace_id), specs_to_json(specs),
                           content_type="application/json")
    except Exception:  # a shortcut only: the packaging stage then reads the points again
        log.warning("job %s: the report's chart specs could not be stored", job.trace_id,
                    exc_info=True)


# ---------------------------------------------------------------- LLM chains
def _llm_clients(services: Services) -> tuple[dict[Provider, LLMClient], Any]:
    settings = services.settings
    if not any((settings.openrouter_api_key, settings.gemini_api_key,
                settings.anthropic_api_key)):
        return {}, None  # LLM analysis is off: nothing is imported, nothing is called
    import httpx

    from metric_stream.llm import clients_from_settings

    timeout = services.config.get().llm.timeout_s
    http = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))
    return clients_from_settings(settings, http, timeout_s=timeout), http


def _chain_for(config: SystemConfig, entry: KpiDefinition | None,
               clients: Mapping[Provider, LLMClient]) -> AnalysisChain | None:
    if not clients:
        return None
    name = (entry.analysis_config.analysis_chain if entry else None) or config.default_chain
    return config.analysis_chains.get(name) or config.analysis_chains[config.default_chain]


def _has_image_step(chain: AnalysisChain | None, clients: Mapping[Provider, LLMClient]) -> bool:
    """Whether the chain will run and show the chart to a model (a chain with a step
    whose provider has no key is skipped whole)."""
    if chain is None or any(s.enabled and s.provider not in clients for s in chain.steps):
        return False
    return any(s.enabled and s.kind == "image" for s in chain.steps)


def _for_llm(analytics: Mapping[str, Any]) -> dict[str, Any]:
    wire = dict(analytics)
    gaps = wire.get("gaps") or []
    if len(gaps) > MAX_GAPS_FOR_LLM:
        wire["gaps"] = gaps[-MAX_GAPS_FOR_LLM:]
    return wire


def reading_wire(result: ChainResult) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "status": result.status, "texts": result.texts,
        "models": list(dict.fromkeys(f"{s.provider}/{s.model}" for s in result.steps)),
        "latencyMs": result.latency_ms,
        "inputTokens": result.input_tokens,
        "outputTokens": result.output_tokens,
        "calls": result.calls,
        "stepLatencyMs": [s.latency_ms for s in result.steps],
    }
    if result.reason:
        wire["reason"] = result.reason
    if result.failed_kind:
        wire["failedStep"] = result.failed_kind
    return wire


def run_chains(services: Services, config: SystemConfig, inputs: Mapping[str, KpiInput],
               plans: Mapping[str, AnalysisChain | None],
               clients: Mapping[Provider, LLMClient], images: Mapping[str, tuple[str, bytes]],
               cross: Mapping[str, Any], job: Job
               ) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The deep dives (concurrently, within `llm.concurrency`) and then the consolidated
    chain, which sees each KPI's figures and its deep dive's synthesis."""
    if not clients:
        off = {"status": "off", "reason": "no LLM provider key is configured"}
        return {kpi_id: dict(off) for kpi_id in inputs}, dict(off)
    from metric_stream.llm import ChainContext, TokenBudget, run_chain

    llm = config.llm
    budget = TokenBudget(llm.job_token_budget)

    def deep_dive(kpi_id: str) -> dict[str, Any]:
        item, chain = inputs[kpi_id], plans[kpi_id]
        if chain is None:
            return {"status": "skipped", "reason": "no analysis chain"}
        unit = item.entry.unit if item.entry else None
        context = ChainContext(name=item.name, analytics=_for_llm(item.analytics.to_wire()),
                               unit=unit, kpi_id=kpi_id, chart=images.get(kpi_id))
        return _run(run_chain, chain, clients, context, config, budget)

    with ContextThreadPool(max_workers=max(1, min(llm.concurrency, len(inputs))),
                           thread_name_prefix="llm") as pool:
        readings = dict(zip(inputs, pool.map(deep_dive, inputs), strict=True))
    if not llm.consolidated or not inputs:
        return readings, {"status": "skipped", "reason": "the consolidated chain is off"}
    overview_context = ChainContext(
        name="All indicators", consolidated=True,
        analytics={**cross, "kpis": [_kpi_brief(i, readings.get(k)) for k, i in inputs.items()]})
    chain = config.analysis_chains[config.default_chain]
    return readings, _run(run_chain, chain, clients, overview_context, config, budget)


def _run(run_chain: Any, chain: AnalysisChain, clients: Mapping[Provider, LLMClient],
         context: Any, config: SystemConfig, budget: TokenBudget) -> dict[str, Any]:
    try:
        result = run_chain(chain, clients, context, policy=config.retry.llm,
                           max_tokens=config.llm.max_tokens,
                           temperature=config.llm.temperature, budget=budget,
                           max_answer_chars=config.llm.max_answer_chars)
    except Exception as exc:  # a bug in a provider adapter must not sink the report
        log.exception("analysis chain for %s crashed", context.name)
        return {"status": "failed", "reason": f"the chain crashed: {type(exc).__name__}"}
    return reading_wire(result)


def _kpi_brief(item: KpiInput, reading: Mapping[str, Any] | None) -> dict[str, Any]:
    a = item.analytics
    brief: dict[str, Any] = {"id": item.kpi_id, "name": item.name,
                             "latest": a.latest_value,
                             "unit": item.entry.unit if item.entry else ""}
    for change in a.changes:
        brief[f"change{change.window_days}dPercent"] = change.percent
    if a.trend is not None:
        brief["trend"] = f"{a.trend.direction} ({a.trend.strength})"
    if a.alerts:
        brief["alerts"] = [alert.kind for alert in a.alerts]
    texts = (reading or {}).get("texts") or {}
    if texts.get("synthesis"):
        brief["reading"] = texts["synthesis"][:400]
    return brief


def llm_summary(readings: Mapping[str, Mapping[str, Any]], overview: Mapping[str, Any],
                clients: Mapping[Provider, LLMClient], config: SystemConfig) -> dict[str, Any]:
    """How the job's chains went: the overall status for the report and `/api/metrics`
    (calls, tokens, latency), and each failure with its reason."""
    if not clients:
        return {"status": "off", "reason": "no LLM provider key is configured"}
    ran = [*readings.values(), overview]
    ok = sum(1 for r in ran if r.get("status") == "ok")
    failed = [(k, r) for k, r in [*readings.items(), ("consolidated", overview)]
              if r.get("status") == "failed"]
    status = ("ok" if ok else "skipped") if not failed else ("partial" if ok else "failed")
    skipped = next((r.get("reason") for r in ran if r.get("status") == "skipped"), None)
    latencies = [ms for r in ran for ms in r.get("stepLatencyMs") or []]
    return {
        "status": status,
        "providers": sorted(clients),
        **({"reason": skipped} if status == "skipped" and skipped else {}),
        "chainsOk": ok,
        "chainsFailed": len(failed),
        "failures": [{"kpiId": k, "step": r.get("failedStep"), "reason": r.get("reason")}
                     for k, r in failed[:MAX_FAILURES_KEPT]],
        "calls": sum(int(r.get("calls") or 0) for r in ran),
        "inputTokens": sum(int(r.get("inputTokens") or 0) for r in ran),
        "outputTokens": sum(int(r.get("outputTokens") or 0) for r in ran),
        "tokenBudget": config.llm.job_token_budget,
        "latencyMs": _latency(latencies),
    }


def _latency(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    return {"p50": round(statistics.median(ordered), 1),
            "p95": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 1),
            "max": round(ordered[-1], 1)}
