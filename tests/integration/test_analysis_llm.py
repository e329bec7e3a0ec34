"""The analysis stage's LLM chains, end to end over real sockets.

The fake providers (`tests/llm_fakes.py`: the OpenRouter, Gemini and Anthropic APIs on
127.0.0.1) answer each chain step as a test scripts it. A demo job runs through analysis,
packaging and delivery with every provider base URL pointing at that server, so nothing
leaves 127.0.0.1; the tests read what the providers were sent, the packages, the PDF and
the channel messages.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pypdf import PdfReader

from metric_stream.api.app import build_api
from metric_stream.api.http import Request
from metric_stream.bootstrap import Services
from metric_stream.clock import ManualClock
from metric_stream.collectors.demo import demo_registry, seed_history
from metric_stream.models import JobStatus
from metric_stream.models.config import (
    AnalysisChain,
    AnalysisStep,
    LlmConfig,
    Provider,
    RetryPolicy,
    SystemConfig,
)
from metric_stream.models.job import Job
from metric_stream.models.report import ConsolidatedPackage, KpiPackage
from metric_stream.services import cycle
from metric_stream.services.stages import default_workers
from tests.conftest import make_services
from tests.llm_fakes import (
    KEY,
    PROVIDERS,
    USAGE,
    Call,
    FakeProviders,
    Reply,
    error,
    ok_body,
)

ADMIN_KEY = "admin-key-for-llm-tests"
OVERVIEW = "Overview: the market is calm and every indicator holds its range."
FAST_RETRIES = RetryPolicy(retries=2, delays_s=[0, 0])
DEFAULT_CHAIN_USAGE = (300 + 120 + 200 + 200, 20 + 30 + 40 + 40)  # image..synthesis
ANTHROPIC_ONLY = AnalysisChain(steps=[
    AnalysisStep(kind="numerical", provider="anthropic", model="claude-haiku-4-5",
                 prompt={"task": "Interpret the computed statistics."}),
    AnalysisStep(kind="synthesis", provider="anthropic", model="claude-sonnet-4-5",
                 prompt={"task": "Summarise what changed, in 3 sentences."}),
])
SYNTHESIS_ONLY = AnalysisChain(steps=[ANTHROPIC_ONLY.steps[1]])


def synthesis_of(kpi_id: str) -> str:
    return f"Synthesis of {kpi_id}: momentum holds above its 30-day average."


# --- what the models answer --------------------------------------------------------------

def text_for(call: Call) -> str:
    """What a well-behaved model answers: the synthesis names its KPI."""
    if call.step != "synthesis":
        return f"The {call.step} reading of {call.kpi_id or 'all indicators'}."
    return OVERVIEW if call.kpi_id is None else synthesis_of(call.kpi_id)


def answer(call: Call) -> Reply:
    return Reply(body=ok_body(call.provider, text_for(call)))


# --- fixtures and helpers ----------------------------------------------------------------

@pytest.fixture(scope="module")
def server() -> Iterator[FakeProviders]:
    with FakeProviders(answer) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeProviders, monkeypatch: pytest.MonkeyPatch) -> FakeProviders:
    # No proxy from the environment may sit between the stage's HTTP client and the fake.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    server.reset()
    return server


ServicesFor = Callable[..., Services]


@pytest.fixture
def services_for(fake: FakeProviders, tmp_path: Path, clock: ManualClock) -> ServicesFor:
    """Embedded services whose settings hold a key for each given provider; every base
    URL points at the fake, keyed or not, so no call can leave this machine."""

    def make(*keyed: Provider, kpis: int = 4) -> Services:
        settings: dict[str, object] = {"admin_key": ADMIN_KEY}
        for provider in PROVIDERS:
            settings[f"{provider}_base_url"] = fake.base_url(provider)
            if provider in keyed:
                settings[f"{provider}_api_key"] = KEY
        services = make_services("embedded", tmp_path, clock, **settings)
        entries = demo_registry(kpis)
        for entry in entries:
            services.registry.kpis.create(entry)
        seed_history(services, entries, 60, (clock.now() - timedelta(days=1)).date())
        return services

    return make


def configure(services: Services, *, chain: AnalysisChain | None = None,
              **llm: Any) -> SystemConfig:
    """The system config with fast LLM retries, `llm` settings and, given one, `chain`
    as the default chain."""
    config = services.config.get()
    changes: dict[str, Any] = {
        "retry": config.retry.model_copy(update={"llm": FAST_RETRIES}),
        "llm": LlmConfig.model_validate(config.llm.model_dump() | llm),
    }
    if chain is not None:
        changes["analysis_chains"] = {"default": chain}
    return services.config.put(SystemConfig.model_validate(config.model_dump() | changes),
                               services.clock.now())


def run_job(services: Services) -> Job:
    """A demo job through every stage, and the job as it ends."""
    with httpx.Client() as http:
        job, _ = cycle.start_job(services, cycle.Triggers(http))
    workers = default_workers()
    for queue in ("analysis", "packaging", "delivery"):
        cycle.consume(services, queue, workers)
    done = services.jobs.require(job.trace_id)
    assert done.status.terminal, f"the job stopped at {done.status}"
    return done


def packages_of(services: Services, job: Job) -> dict[str, KpiPackage]:
    return {p.kpi_id: p for p in services.packages.list(job.trace_id)}


def consolidated_of(services: Services, job: Job) -> ConsolidatedPackage:
    consolidated = services.packages.consolidated(job.trace_id)
    assert consolidated is not None
    return consolidated


def llm_of(services: Services, job: Job) -> dict[str, Any]:
    analysis = consolidated_of(services, job).analysis
    assert analysis is not None
    llm: dict[str, Any] = analysis["llm"]
    return llm


def squash(text: str) -> str:
    """Text without whitespace: a PDF wraps lines wherever its layout needs."""
    return "".join(text.split())


def pdf_text(services: Services, job: Job) -> str:
    document = services.packages.document(job.trace_id)
    assert document is not None
    reader = PdfReader(io.BytesIO(services.blobs.get(document.blob_key)))
    return squash("".join(page.extract_text() for page in reader.pages))


def names_of(services: Services, job: Job) -> dict[str, str]:
    entries = {e.id: e for e in services.registry.kpis.all()}
    return {k: entries[k].name if k in entries else k for k in job.kpi_ids}


def chart_format(services: Services, package: KpiPackage) -> str:
    assert package.chart_key is not None
    record = services.charts.get(package.chart_key)
    assert record is not None
    return record.format


# --- every provider answers --------------------------------------------------------------

def test_all_three_providers_read_every_kpi_and_the_report_says_so(
    services_for: ServicesFor, fake: FakeProviders
) -> None:
    services = services_for(*PROVIDERS)
    configure(services)
    job = run_job(services)

    assert job.status is JobStatus.COMPLETE
    packages = packages_of(services, job)
    assert set(packages) == set(job.kpi_ids) and len(packages) == 4
    for kpi_id, package in packages.items():
        analysis = package.analysis
        assert analysis is not None
        assert analysis["status"] == "ok", analysis
        assert analysis["texts"]["synthesis"] == synthesis_of(kpi_id)
        assert list(analysis["texts"]) == ["image", "numerical", "technical", "synthesis"]
        assert analysis["models"] == ["gemini/gemini-2.5-flash", "openrouter/openai/gpt-4o-mini",
                                      "anthropic/claude-sonnet-4-5"]
        assert (analysis["calls"], analysis["inputTokens"], analysis["outputTokens"]) == (
            4, *DEFAULT_CHAIN_USAGE)

        # The image step showed Gemini the chart the stage stored, as a real PNG.
        [image_call] = fake.of("gemini", kpi_id=kpi_id)
        inline, _ = image_call.parts
        png = base64.b64decode(inline["inline_data"]["data"])
        assert inline["inline_data"]["mime_type"] == "image/png"
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert chart_format(services, package) == "png"
        record = services.charts.get(package.chart_key or "")
        assert record is not None and services.blobs.get(record.blob_key) == png
        assert image_call.prompt["chartAttached"] is True

        # The numerical step read the KPI's computed analytics.
        [numerical] = fake.of("openrouter", kpi_id=kpi_id)
        assert package.analytics is not None
        assert numerical.prompt["analytics"]["latestValue"] == package.analytics["latestValue"]
        assert numerical.prompt["analytics"]["latestValue"] == package.value
        assert numerical.prompt["kpi"]["id"] == kpi_id
        [technical, synthesis] = fake.of("anthropic", kpi_id=kpi_id)
        assert set(synthesis.prompt["previous"]) == {"image", "numerical", "technical"}
        assert technical.prompt["previous"]["numerical"] == analysis["texts"]["numerical"]

    # The consolidated chain saw each KPI's figures and its deep dive's synthesis.
    [overview_call] = [c for c in fake.of("anthropic", step="synthesis") if c.kpi_id is None]
    assert overview_call.prompt["scope"] == "consolidated"
    assert {k["id"]: k["reading"] for k in overview_call.prompt["analytics"]["kpis"]} == {
        k: synthesis_of(k) for k in packages}
    assert all(c.kpi_id is not None for c in fake.of("gemini"))  # no chart, no image step

    analysis = consolidated_of(services, job).analysis
    assert analysis is not None
    assert analysis["overview"]["status"] == "ok"
    assert analysis["overview"]["texts"]["synthesis"] == OVERVIEW
    llm = analysis["llm"]
    assert llm["status"] == "ok"
    assert (llm["chainsOk"], llm["chainsFailed"], llm["failures"]) == (5, 0, [])
    assert llm["providers"] == ["anthropic", "gemini", "openrouter"]
    assert llm["calls"] == len(fake.calls) == 4 * 4 + 3
    assert (llm["inputTokens"], llm["outputTokens"]) == (
        5 * DEFAULT_CHAIN_USAGE[0] - 300, 5 * DEFAULT_CHAIN_USAGE[1] - 20)
    assert set(llm["latencyMs"]) == {"p50", "p95", "max"}
    assert 0 < llm["latencyMs"]["p50"] <= llm["latencyMs"]["p95"] <= llm["latencyMs"]["max"]

    text = pdf_text(services, job)
    assert "AI-GENERATED" in text
    assert squash("on: AI-generated readings are marked as such") in text
    assert squash(OVERVIEW) in text
    for kpi_id in packages:
        assert squash(synthesis_of(kpi_id)) in text

    messages = consolidated_of(services, job).messages
    assert messages is not None
    assert set(messages) == {"email", "telegram", "discord", "slack", "sms", "webhook"}
    assert f"AI-generated: {OVERVIEW}" in messages["email"]["text"]
    assert "AI-generated:" in messages["email"]["html"] and OVERVIEW in messages["email"]["html"]
    assert f"<b>AI-generated:</b> {OVERVIEW}" in messages["telegram"]



# --- a provider that fails ---------------------------------------------------------------

def anthropic_down(call: Call) -> Reply:
    if call.provider == "anthropic":
        return error("anthropic", 500, "Internal server error")
    return answer(call)


def test_a_provider_that_always_fails_fails_every_chain_and_the_report_still_goes_out(
    services_for: ServicesFor, fake: FakeProviders
) -> None:
    services = services_for(*PROVIDERS)
    configure(services)
    fake.respond = anthropic_down
    job = run_job(services)

    assert job.status is JobStatus.COMPLETE  # every KPI was collected; the LLM is optional
    reason = "anthropic LLM call failed (500): api_error: Internal server error"
    packages = packages_of(services, job)
    assert len(packages) == 4
    for kpi_id, package in packages.items():
        assert package.analysis is not None
        assert package.analysis["status"] == "failed"
        assert package.analysis["reason"] == reason
        assert package.analysis["failedStep"] == "technical"
        assert package.analysis["texts"] == {}  # all or nothing: no half a reading
        anthropic = fake.of("anthropic", kpi_id=kpi_id)
        assert [c.step for c in anthropic] == ["technical"] * (1 + FAST_RETRIES.retries)
        assert package.analytics is not None and package.chart_key is not None

    llm = llm_of(services, job)
    assert llm["status"] == "failed"
    assert (llm["chainsOk"], llm["chainsFailed"]) == (0, 5)
    assert llm["failures"] == [{"kpiId": k, "step": "technical", "reason": reason}
                               for k in [*job.kpi_ids, "consolidated"]]
    analysis = consolidated_of(services, job).analysis
    assert analysis is not None and analysis["overview"]["status"] == "failed"

    text = pdf_text(services, job)
    assert squash("failed: the report carries the computed analytics only") in text
    assert squash("The AI-generated overview is missing: the consolidated LLM analysis "
                  f"failed ({reason})") in text
    assert text.count(squash("No AI-generated reading: the analysis chain failed")) == 4
    for name in names_of(services, job).values():
        assert squash(name) in text
    assert "AI-GENERATED" not in text
    assert "reading of" not in text  # the steps that answered left nothing behind
    messages = consolidated_of(services, job).messages
    assert messages is not None
    assert "LLM analysis failed" in messages["email"]["text"]
    assert "AI-generated:" not in messages["email"]["text"]
    assert "AI-generated:" not in messages["telegram"]


def test_a_failed_chain_still_counts_the_tokens_it_spent(
    services_for: ServicesFor, fake: FakeProviders
) -> None:
    services = services_for(*PROVIDERS)
    configure(services)
    fake.respond = anthropic_down
    job = run_job(services)

    image_and_numerical = USAGE["gemini"][0] + USAGE["openrouter"][0]
    for package in packages_of(services, job).values():
        assert package.analysis is not None
        assert package.analysis["inputTokens"] == image_and_numerical
    assert llm_of(services, job)["inputTokens"] == 4 * image_and_numerical + USAGE["openrouter"][0]


# --- keys missing ------------------------------------------------------------------------

def test_one_key_skips_a_chain_that_needs_others_and_runs_one_that_does_not(
    services_for: ServicesFor, fake: FakeProviders, clock: ManualClock
) -> None:
    services = services_for("anthropic")
    configure(services)
    job = run_job(services)

    assert fake.calls == []  # a chain that cannot run whole makes no call at all
    assert job.status is JobStatus.COMPLETE
    for package in packages_of(services, job).values():
        assert package.analysis is not None
        assert package.analysis["status"] == "skipped"
        assert package.analysis["reason"].startswith("no API key for provider ")
        assert chart_format(services, package) == "svg"  # no model will read the chart
    analysis = consolidated_of(services, job).analysis
    assert analysis is not None and analysis["overview"]["status"] == "skipped"
    text = pdf_text(services, job)
    assert text.count(squash("No AI-generated reading: the analysis chain skipped "
                             "(no API key for provider")) == 4
    assert "AI-GENERATED" not in text

    clock.advance(timedelta(days=1))
    configure(services, chain=ANTHROPIC_ONLY)
    job = run_job(services)

    assert {c.provider for c in fake.calls} == {"anthropic"}
    assert len(fake.calls) == 2 * 5  # numerical and synthesis, 4 KPIs and the overview
    assert all(len(c.parts) == 1 and c.parts[0]["type"] == "text" for c in fake.calls)
    for kpi_id, package in packages_of(services, job).items():
        assert package.analysis is not None
        assert package.analysis["status"] == "ok"
        assert package.analysis["texts"]["synthesis"] == synthesis_of(kpi_id)
        assert chart_format(services, package) == "svg"  # no image step: the vector chart
    llm = llm_of(services, job)
    assert (llm["status"], llm["chainsOk"], llm["providers"]) == ("ok", 5, ["anthropic"])
    assert "AI-GENERATED" in pdf_text(services, job)


def test_a_job_whose_chains_were_all_skipped_does_not_say_the_llm_is_on(
    services_for: ServicesFor, fake: FakeProviders
) -> None:
    services = services_for("anthropic")
    configure(services)
    job = run_job(services)

    assert llm_of(services, job)["status"] != "ok"
    assert squash("on: AI-generated readings are marked as such") not in pdf_text(services, job)


def test_no_key_makes_no_call_and_the_report_says_the_llm_was_off(
    services_for: ServicesFor, fake: FakeProviders
) -> None:
    services = services_for()
    configure(services)
    job = run_job(services)

    assert fake.calls == []
    assert job.status is JobStatus.COMPLETE
    off = {"status": "off", "reason": "no LLM provider key is configured"}
    assert llm_of(services, job) == off
    analysis = consolidated_of(services, job).analysis
    assert analysis is not None and analysis["overview"] == off
    for package in packages_of(services, job).values():
        assert package.analysis == off
        assert chart_format(services, package) == "svg"
    text = pdf_text(services, job)
    assert squash("off: no LLM provider key is configured") in text
    assert "AI-GENERATED" not in text
    messages = consolidated_of(services, job).messages
    assert messages is not None
    assert "LLM analysis was off" in messages["email"]["text"]


# --- limits ------------------------------------------------------------------------------

def test_the_job_token_budget_fails_the_chains_after_it_is_spent(
    services_for: ServicesFor, fake: FakeProviders
) -> None:
    services = services_for(*PROVIDERS)
    configure(services, chain=SYNTHESIS_ONLY, job_token_budget=2000, concurrency=1,
              max_tokens=100)
    fake.respond = lambda call: Reply(body=ok_body(call.provider, text_for(call), (800, 100)))
    job = run_job(services)

    # One chain at a time; each step holds its prompt estimate + max_tokens (~600) before
    # it is sent. The first spends 900 tokens, the second 900 more; then no step fits in
    # what is left and every later chain fails before it calls.
    assert job.status is JobStatus.COMPLETE
    assert len(fake.calls) == 2
    spent = "the job's LLM token budget (2000 tokens) is spent: this step could go over it"
    first, second, *rest = job.kpi_ids
    packages = packages_of(services, job)
    for kpi_id in (first, second):
        analysis = packages[kpi_id].analysis
        assert analysis is not None
        assert (analysis["status"], analysis["inputTokens"], analysis["outputTokens"]) == (
            "ok", 800, 100)
    for kpi_id in rest:
        analysis = packages[kpi_id].analysis
        assert analysis is not None
        assert (analysis["status"], analysis["reason"]) == ("failed", spent)
    llm = llm_of(services, job)
    assert (llm["status"], llm["chainsOk"], llm["chainsFailed"]) == ("partial", 2, 3)
    assert llm["failures"] == [{"kpiId": k, "step": "synthesis", "reason": spent}
                               for k in [*rest, "consolidated"]]
    assert (llm["inputTokens"], llm["outputTokens"], llm["tokenBudget"]) == (1600, 200, 2000)
    text = pdf_text(services, job)
    assert squash("partly available: some readings failed and are left out") in text
    assert squash(synthesis_of(first)) in text


@pytest.mark.parametrize(("concurrency", "kpis"), [(2, 4), (4, 6)])
def test_deep_dives_run_in_parallel_within_the_configured_concurrency(
    services_for: ServicesFor, fake: FakeProviders, concurrency: int, kpis: int
) -> None:
    services = services_for(*PROVIDERS, kpis=kpis)
    configure(services, concurrency=concurrency)
    fake.delay_s = 0.1
    job = run_job(services)

    assert len(job.kpi_ids) == kpis
    assert llm_of(services, job)["chainsOk"] == kpis + 1
    assert 1 < fake.max_in_flight <= concurrency


def test_the_configured_llm_timeout_cuts_a_slow_provider_short(
    services_for: ServicesFor, fake: FakeProviders
) -> None:
    services = services_for("anthropic", kpis=1)
    configure(services, chain=SYNTHESIS_ONLY, timeout_s=0.2, consolidated=False)
    fake.delay_s = 0.5
    job = run_job(services)

    [package] = packages_of(services, job).values()
    assert package.analysis is not None
    assert package.analysis["status"] == "failed"
    assert "timeout" in package.analysis["reason"]


def test_the_metrics_route_reports_the_llm_runs(
    services_for: ServicesFor, fake: FakeProviders
) -> None:
    services = services_for(*PROVIDERS)
    configure(services)
    run_job(services)

    response = build_api(services).handle(Request(
        "GET", "/api/metrics", {"authorization": f"Bearer {ADMIN_KEY}"}))
    assert response.status == 200
    llm = json.loads(response.body)["llm"]
    assert llm["jobs"] == 1
    assert llm["calls"] == len(fake.calls) > 0
    assert (llm["inputTokens"], llm["outputTokens"]) == (
        5 * DEFAULT_CHAIN_USAGE[0] - 300, 5 * DEFAULT_CHAIN_USAGE[1] - 20)
    assert llm["chainsFailed"] == 0
    assert set(llm["latencyMs"]) == {"median", "p95", "max"}


# --- bad answers -------------------------------------------------------------------------

LONG_ANSWER = " ".join(f"word{i}" for i in range(1000))  # 5889 characters
BAD_SYNTHESIS: dict[str, Reply] = {
    "demo-btc-price-usd": Reply(body=ok_body("anthropic", " \n ")),
    "demo-fear-greed-index": Reply(body=b"<html><body>502 Bad Gateway</body></html>",
                                   headers={"Content-Type": "text/html"}),
    "demo-eth-price-usd": Reply(body=ok_body("anthropic", LONG_ANSWER)),
}


def bad_synthesis(call: Call) -> Reply:
    if call.step == "synthesis" and call.kpi_id in BAD_SYNTHESIS:
        return BAD_SYNTHESIS[call.kpi_id]
    return answer(call)


def test_empty_and_non_json_answers_fail_their_chain_and_a_long_one_is_cut(
    services_for: ServicesFor, fake: FakeProviders
) -> None:
    services = services_for(*PROVIDERS, kpis=3)
    config = configure(services, max_answer_chars=300)
    fake.respond = bad_synthesis
    job = run_job(services)

    assert sorted(job.kpi_ids) == sorted(BAD_SYNTHESIS)
    assert job.status is JobStatus.COMPLETE
    packages = packages_of(services, job)
    tries = 1 + FAST_RETRIES.retries
    failed = {"demo-btc-price-usd": "anthropic LLM call failed (200): empty answer (end_turn)",
              "demo-fear-greed-index": "anthropic LLM call failed (200): answer is not JSON "
                                       "(text/html): '<html><body>502 Bad Gateway</body>"
                                       "</html>'"}
    for kpi_id, reason in failed.items():
        analysis = packages[kpi_id].analysis
        assert analysis is not None
        assert (analysis["status"], analysis["failedStep"], analysis["reason"]) == (
            "failed", "synthesis", reason)
        assert len(fake.of("anthropic", step="synthesis", kpi_id=kpi_id)) == tries

    cut = packages["demo-eth-price-usd"].analysis
    assert cut is not None and cut["status"] == "ok"
    synthesis = cut["texts"]["synthesis"]
    assert len(synthesis) <= config.llm.max_answer_chars
    assert synthesis.endswith("…") and LONG_ANSWER.startswith(synthesis.removesuffix("…"))
    assert len(fake.of("anthropic", step="synthesis", kpi_id="demo-eth-price-usd")) == 1

    llm = llm_of(services, job)
    assert (llm["status"], llm["chainsOk"], llm["chainsFailed"]) == ("partial", 2, 2)
    assert llm["failures"] == [{"kpiId": k, "step": "synthesis", "reason": r}
                               for k, r in failed.items() if k in job.kpi_ids]
    text = pdf_text(services, job)
    assert squash(synthesis) in text
    assert squash(OVERVIEW) in text
    assert text.count(squash("No AI-generated reading: the analysis chain failed")) == 2
