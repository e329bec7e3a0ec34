"""LLM clients (exact request shapes per provider, retries, errors) and the analysis chain."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from metric_stream.llm import (
    AnthropicClient,
    ChainContext,
    GeminiClient,
    LLMAnswer,
    LLMClient,
    LLMError,
    LLMRequest,
    OpenRouterClient,
    TokenBudget,
    clients_from_settings,
    complete_with_retries,
    render_prompt,
    run_chain,
)
from metric_stream.llm.chain import SYSTEM_PROMPT
from metric_stream.llm.clients import truncate_answer
from metric_stream.models.config import AnalysisChain, AnalysisStep, Provider, RetryConfig
from metric_stream.settings import Settings

PNG = b"\x89PNG\r\n\x1a\nfake-chart"
PNG_B64 = base64.b64encode(PNG).decode()
KEY = "sk-secret-key-123"
POLICY = RetryConfig().llm

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def sleeps() -> list[float]:
    return []


def http_for(handler: Handler) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler))


def body(request: httpx.Request) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(request.content)
    return data


def openrouter_ok(text: str = "BTC is up.") -> httpx.Response:
    return httpx.Response(200, json={
        "id": "gen-1", "model": "openai/gpt-4o-mini", "object": "chat.completion",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150},
    })


def gemini_ok(text: str = "The chart rises.") -> httpx.Response:
    return httpx.Response(200, json={
        "candidates": [{"content": {"role": "model",
                                    "parts": [{"text": text[:5]}, {"text": text[5:]}]},
                        "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 300, "candidatesTokenCount": 20,
                          "totalTokenCount": 320},
        "modelVersion": "gemini-2.5-flash",
    })


def anthropic_ok(text: str = "Momentum is positive.") -> httpx.Response:
    return httpx.Response(200, json={
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 200, "output_tokens": 40},
    })


REQUEST = LLMRequest(model="m", system="sys", user="hello", images=(("image/png", PNG),),
                     max_tokens=256, temperature=0.1)


def test_openrouter_request_shape_and_answer() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == "POST"
        assert str(request.url) == "https://openrouter.ai/api/v1/chat/completions"
        assert request.headers["authorization"] == f"Bearer {KEY}"
        assert request.headers["content-type"] == "application/json"
        assert body(request) == {
            "model": "openai/gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "sys"},
                {"role": "user", "content": [
                    {"type": "image_url",
                     "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
                    {"type": "text", "text": "hello"},
                ]},
            ],
            "max_tokens": 256,
            "temperature": 0.1,
        }
        return openrouter_ok()

    client = OpenRouterClient(http_for(handler), SecretStr(KEY), "https://openrouter.ai/api/v1/")
    answer = client.complete(
        LLMRequest(**{**REQUEST.__dict__, "model": "openai/gpt-4o-mini"}))
    assert answer.text == "BTC is up."
    assert answer.provider == "openrouter"
    assert answer.model == "openai/gpt-4o-mini"
    assert (answer.input_tokens, answer.output_tokens) == (120, 30)
    assert answer.latency_ms >= 0


def test_gemini_request_shape_and_answer() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert str(request.url) == (
            "https://generativelanguage.googleapis.com/v1beta/models/"
            "gemini-2.5-flash:generateContent")
        assert request.headers["x-goog-api-key"] == KEY
        assert "authorization" not in request.headers
        assert KEY not in str(request.url)
        assert body(request) == {
            "system_instruction": {"parts": [{"text": "sys"}]},
            "contents": [{"role": "user", "parts": [
                {"inline_data": {"mime_type": "image/png", "data": PNG_B64}},
                {"text": "hello"},
            ]}],
            "generation_config": {"max_output_tokens": 256, "temperature": 0.1},
        }
        return gemini_ok()

    client = GeminiClient(http_for(handler), KEY,
                          "https://generativelanguage.googleapis.com/v1beta")
    answer = client.complete(LLMRequest(**{**REQUEST.__dict__, "model": "gemini-2.5-flash"}))
    assert answer.text == "The chart rises."
    assert answer.provider == "gemini"
    assert (answer.input_tokens, answer.output_tokens) == (300, 20)


def test_anthropic_request_shape_and_answer() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert str(request.url) == "https://api.anthropic.com/v1/messages"
        assert request.headers["x-api-key"] == KEY
        assert request.headers["anthropic-version"] == "2023-06-01"
        assert body(request) == {
            "model": "claude-sonnet-4-5",
            "max_tokens": 256,
            "temperature": 0.1,
            "system": "sys",
            "messages": [{"role": "user", "content": [
                {"type": "image",
                 "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
                {"type": "text", "text": "hello"},
            ]}],
        }
        return anthropic_ok()

    client = AnthropicClient(http_for(handler), KEY, "https://api.anthropic.com/v1")
    answer = client.complete(LLMRequest(**{**REQUEST.__dict__, "model": "claude-sonnet-4-5"}))
    assert answer.text == "Momentum is positive."
    assert answer.provider == "anthropic"
    assert answer.model == "claude-sonnet-4-5"
    assert (answer.input_tokens, answer.output_tokens) == (200, 40)


def responses(*items: httpx.Response) -> tuple[Handler, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue: Iterator[httpx.Response] = iter(items)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return next(queue)

    return handler, seen


def test_429_with_retry_after_is_retried_after_that_wait(sleeps: list[float]) -> None:
    handler, seen = responses(
        httpx.Response(429, headers={"retry-after": "7"},
                       json={"error": {"message": "Rate limit exceeded", "code": 429}}),
        openrouter_ok(),
    )
    client = OpenRouterClient(http_for(handler), KEY, "https://openrouter.ai/api/v1")
    answer = complete_with_retries(client, REQUEST, policy=POLICY, sleep=sleeps.append)
    assert answer.text == "BTC is up."
    assert len(seen) == 2
    assert sleeps == [7.0]


def test_500_twice_then_success_uses_the_policy_delays(sleeps: list[float]) -> None:
    handler, seen = responses(
        httpx.Response(500, json={"type": "error",
                                  "error": {"type": "api_error", "message": "Internal"}}),
        httpx.Response(529, json={"type": "error",
                                  "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        anthropic_ok(),
    )
    client = AnthropicClient(http_for(handler), KEY, "https://api.anthropic.com/v1")
    answer = complete_with_retries(client, REQUEST, policy=POLICY, sleep=sleeps.append)
    assert answer.text == "Momentum is positive."
    assert len(seen) == 3
    assert sleeps == [2.0, 4.0]


def test_500_three_times_raises_after_two_retries(sleeps: list[float]) -> None:
    handler, seen = responses(*(httpx.Response(503, text="unavailable") for _ in range(3)))
    client = GeminiClient(http_for(handler), KEY, "https://g.example/v1beta")
    with pytest.raises(LLMError) as info:
        complete_with_retries(client, REQUEST, policy=POLICY, sleep=sleeps.append)
    assert info.value.status == 503
    assert len(seen) == 3
    assert sleeps == [2.0, 4.0]


def test_timeout_is_retried(sleeps: list[float]) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.ReadTimeout("timed out", request=request)
        return gemini_ok()

    client = GeminiClient(http_for(handler), KEY, "https://g.example/v1beta")
    answer = complete_with_retries(client, REQUEST, policy=POLICY, sleep=sleeps.append)
    assert answer.text == "The chart rises."
    assert sleeps == [2.0]


@pytest.mark.parametrize("status", [400, 401, 403])
def test_client_errors_are_not_retried_and_hide_the_key(
    status: int, sleeps: list[float]
) -> None:
    handler, seen = responses(httpx.Response(
        status, json={"error": {"code": status, "message": f"API key {KEY} not valid",
                                "status": "UNAUTHENTICATED"}}))
    client = GeminiClient(http_for(handler), SecretStr(KEY), "https://g.example/v1beta")
    with pytest.raises(LLMError) as info:
        complete_with_retries(client, REQUEST, policy=POLICY, sleep=sleeps.append)
    error = info.value
    assert (error.provider, error.status, error.retryable) == ("gemini", status, False)
    assert KEY not in str(error)
    assert KEY not in repr(error)
    assert KEY not in repr(client)
    assert "not valid" in str(error)
    assert len(seen) == 1
    assert sleeps == []


def test_unexpected_answer_shape_is_a_clear_error() -> None:
    handler, _ = responses(httpx.Response(200, json={"choices": []}))
    client = OpenRouterClient(http_for(handler), KEY, "https://openrouter.ai/api/v1")
    with pytest.raises(LLMError, match="unexpected answer shape") as info:
        client.complete(REQUEST)
    assert not info.value.retryable


# --- the chain ---------------------------------------------------------------------------

CHAIN = AnalysisChain()  # image/gemini, numerical/openrouter, technical+synthesis/anthropic
CONTEXT = ChainContext(name="BTC price", unit="USD", kpi_id="btc-price",
                       analytics={"latest": 97000.5, "change7d": 0.042},
                       chart=("image/png", PNG))


def provider_router(
    failing: Provider | None = None,
) -> tuple[dict[Provider, LLMClient], list[tuple[str, dict[str, Any]]]]:
    calls: list[tuple[str, dict[str, Any]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        host = request.url.host
        calls.append((host, body(request)))
        if failing and failing in host:
            return httpx.Response(500, json={"error": {"message": "boom"}})
        if "openrouter" in host:
            return openrouter_ok("numerical reading")
        if "gemini" in host:
            return gemini_ok("chart reading")
        return anthropic_ok(f"anthropic reading {len(calls)}")

    http = http_for(handler)
    clients: dict[Provider, LLMClient] = {
        "openrouter": OpenRouterClient(http, "k1", "https://openrouter.test/api/v1"),
        "gemini": GeminiClient(http, "k2", "https://gemini.test/v1beta"),
        "anthropic": AnthropicClient(http, "k3", "https://anthropic.test/v1"),
    }
    return clients, calls


def test_whole_chain_runs_four_steps_across_three_providers(sleeps: list[float]) -> None:
    clients, calls = provider_router()
    result = run_chain(CHAIN, clients, CONTEXT, policy=POLICY, sleep=sleeps.append)
    assert result.status == "ok"
    assert [(s.kind, s.provider) for s in result.steps] == [
        ("image", "gemini"), ("numerical", "openrouter"),
        ("technical", "anthropic"), ("synthesis", "anthropic"),
    ]
    assert result.texts == {
        "image": "chart reading", "numerical": "numerical reading",
        "technical": "anthropic reading 3", "synthesis": "anthropic reading 4",
    }
    assert [host for host, _ in calls] == [
        "gemini.test", "openrouter.test", "anthropic.test", "anthropic.test"]
    # only the image step carries the chart
    assert calls[0][1]["contents"][0]["parts"][0]["inline_data"]["data"] == PNG_B64
    assert all(part.get("type") == "text" for part in calls[1][1]["messages"][1]["content"])
    # each prompt holds the instructions, the KPI, the analytics and earlier outputs
    synthesis_prompt = json.loads(calls[3][1]["messages"][0]["content"][-1]["text"])
    assert synthesis_prompt["instructions"] == CHAIN.steps[3].prompt
    assert synthesis_prompt["kpi"] == {"id": "btc-price", "name": "BTC price", "unit": "USD"}
    assert synthesis_prompt["analytics"] == {"latest": 97000.5, "change7d": 0.042}
    assert synthesis_prompt["previous"] == {
        "image": "chart reading", "numerical": "numerical reading",
        "technical": "anthropic reading 3"}
    assert all(s.latency_ms >= 0 and s.model for s in result.steps)
    assert sleeps == []


def test_prompt_rendering_is_deterministic() -> None:
    step = CHAIN.steps[1]
    a = render_prompt(step, CONTEXT, {"image": "x"})
    b = render_prompt(step, ChainContext(name="BTC price", unit="USD", kpi_id="btc-price",
                                         analytics={"change7d": 0.042, "latest": 97000.5},
                                         chart=("image/png", PNG)), {"image": "x"})
    assert a == b


def test_without_chart_the_image_step_is_left_out(sleeps: list[float]) -> None:
    clients, calls = provider_router()
    del clients["gemini"]  # not needed when the image step does not run
    context = ChainContext(name="All KPIs", analytics={"movers": []}, consolidated=True)
    result = run_chain(CHAIN, clients, context, policy=POLICY, sleep=sleeps.append)
    assert result.status == "ok"
    assert [s.kind for s in result.steps] == ["numerical", "technical", "synthesis"]
    assert json.loads(calls[0][1]["messages"][1]["content"][-1]["text"])["scope"] == (
        "consolidated")


def test_disabled_steps_are_skipped(sleeps: list[float]) -> None:
    chain = AnalysisChain(steps=[
        AnalysisStep(kind="numerical", provider="openrouter", model="a/b", enabled=False),
        AnalysisStep(kind="synthesis", provider="anthropic", model="claude-x"),
    ])
    clients, calls = provider_router()
    result = run_chain(chain, clients, CONTEXT, policy=POLICY, sleep=sleeps.append)
    assert [s.kind for s in result.steps] == ["synthesis"]
    assert len(calls) == 1


def test_failing_step_fails_the_chain_and_keeps_no_text(sleeps: list[float]) -> None:
    clients, calls = provider_router(failing="anthropic")
    result = run_chain(CHAIN, clients, CONTEXT, policy=POLICY, sleep=sleeps.append)
    assert result.status == "failed"
    assert not result.ok
    assert result.steps == ()
    assert result.texts == {}
    assert (result.failed_step, result.failed_kind) == (2, "technical")
    assert result.reason is not None and "anthropic" in result.reason and "500" in result.reason
    assert [host for host, _ in calls] == ["gemini.test", "openrouter.test"] + [
        "anthropic.test"] * 3
    assert sleeps == [2.0, 4.0]


def test_missing_key_skips_the_chain_without_calls(sleeps: list[float]) -> None:
    handler, seen = responses()
    settings = Settings(gemini_api_key=SecretStr("g"), openrouter_api_key=SecretStr("o"))
    clients = clients_from_settings(settings, http_for(handler))
    assert sorted(clients) == ["gemini", "openrouter"]
    result = run_chain(CHAIN, clients, CONTEXT, policy=POLICY, sleep=sleeps.append)
    assert result.status == "skipped"
    assert result.reason is not None and "anthropic" in result.reason
    assert result.steps == ()
    assert seen == []


def test_clients_from_settings_use_the_configured_base_urls() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert str(request.url) == "http://proxy.test/v1/messages"
        assert request.headers["x-api-key"] == "a-key"
        return anthropic_ok()

    settings = Settings(anthropic_api_key=SecretStr("a-key"),
                        anthropic_base_url="http://proxy.test/v1")
    clients = clients_from_settings(settings, http_for(handler))
    assert list(clients) == ["anthropic"]
    assert clients["anthropic"].complete(REQUEST).text == "Momentum is positive."
    assert clients_from_settings(Settings(), http_for(handler)) == {}


# --- long answers ------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "limit", "expected"), [
    ("short enough", 12, ("short enough", False)),
    ("hello world foo", 14, ("hello world…", True)),  # cut inside "foo": the word goes
    ("hello world foo", 12, ("hello world…", True)),  # cut on the space: nothing to drop
    ("hello,   world", 10, ("hello,…", True)),  # the spaces before "…" go too
    ("abcdefghij", 5, ("abcd…", True)),  # one word longer than the limit is cut inside
    ("ab", 1, ("…", True)),
])
def test_truncate_answer(text: str, limit: int, expected: tuple[str, bool]) -> None:
    assert truncate_answer(text, limit) == expected


def test_long_answers_are_truncated_and_the_chain_says_so(sleeps: list[float]) -> None:
    long_text = "up " * 3000
    handler, _ = responses(anthropic_ok(long_text), anthropic_ok("short"))
    client = AnthropicClient(http_for(handler), KEY, "https://anthropic.test/v1")
    chain = AnalysisChain(steps=[
        AnalysisStep(kind="technical", provider="anthropic", model="claude-x"),
        AnalysisStep(kind="synthesis", provider="anthropic", model="claude-x"),
    ])
    result = run_chain(chain, {"anthropic": client}, CONTEXT, policy=POLICY,
                       sleep=sleeps.append, max_answer_chars=100)
    technical, synthesis = result.steps
    assert technical.truncated
    assert technical.text == "up " * 32 + "up…"
    assert (synthesis.truncated, synthesis.text) == (False, "short")


def test_max_answer_chars_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_answer_chars"):
        LLMRequest(model="m", system="s", user="u", max_answer_chars=0)


# --- token budget ------------------------------------------------------------------------

def test_token_budget_counts_against_its_limit() -> None:
    budget = TokenBudget(100)
    assert (budget.used, budget.remaining, budget.exhausted) == (0, 100, False)
    budget.spend(60)
    assert (budget.used, budget.remaining, budget.exhausted) == (60, 40, False)
    budget.spend(60)
    assert (budget.used, budget.remaining, budget.exhausted) == (120, 0, True)
    unlimited = TokenBudget(None)
    unlimited.spend(10**9)
    assert (unlimited.remaining, unlimited.exhausted) == (None, False)
    assert TokenBudget(0).exhausted
    with pytest.raises(ValueError, match="negative"):
        budget.spend(-1)
    with pytest.raises(ValueError, match="negative"):
        TokenBudget(-1)


def test_a_step_that_could_go_over_the_budget_is_not_sent(sleeps: list[float]) -> None:
    clients, calls = provider_router()
    free = run_chain(CHAIN, clients, CONTEXT, policy=POLICY, sleep=sleeps.append,
                     max_tokens=1000)

    def hold(index: int, previous: dict[str, str]) -> int:
        user = render_prompt(CHAIN.steps[index], CONTEXT, previous)
        return (len(SYSTEM_PROMPT) + len(user)) // 4 + 1000

    # gemini's image step spends 300 + 20; the numerical step's hold then does not fit
    calls.clear()
    budget = TokenBudget(320 + hold(1, {"image": free.texts["image"]}) - 1)
    result = run_chain(CHAIN, clients, CONTEXT, policy=POLICY, sleep=sleeps.append,
                       budget=budget, max_tokens=1000)
    assert result.status == "failed"
    assert result.reason == (f"the job's LLM token budget ({budget.limit} tokens) is spent: "
                             "this step could go over it")
    assert (result.failed_step, result.failed_kind) == (1, "numerical")
    assert [host for host, _ in calls] == ["gemini.test"]
    assert (result.input_tokens, result.output_tokens, result.calls) == (300, 20, 1)
    assert budget.used == 320 and budget.remaining == budget.limit - 320  # type: ignore[operator]


def test_chains_in_threads_never_overshoot_the_budget() -> None:
    budget = TokenBudget(1000)
    granted = []

    def step() -> None:
        if budget.reserve(300):
            granted.append(1)
            budget.settle(300, 290)

    threads = [threading.Thread(target=step) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert budget.used <= 1000 and budget.used == 290 * len(granted)


def test_chain_sums_the_tokens_the_providers_report(sleeps: list[float]) -> None:
    clients, _ = provider_router()
    result = run_chain(CHAIN, clients, CONTEXT, policy=POLICY, sleep=sleeps.append)
    assert (result.input_tokens, result.output_tokens) == (300 + 120 + 200 + 200,
                                                           20 + 30 + 40 + 40)


class Untallied:
    """A client whose provider reports no token counts."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.requests: list[LLMRequest] = []
        self._lock = threading.Lock()

    def complete(self, request: LLMRequest) -> LLMAnswer:
        with self._lock:
            self.requests.append(request)
        return LLMAnswer(text=self.text, model=request.model, provider="openrouter",
                         latency_ms=1.0)


ONE_STEP = AnalysisChain(steps=[
    AnalysisStep(kind="numerical", provider="openrouter", model="a/b")])


def test_unreported_tokens_are_estimated_from_the_text(sleeps: list[float]) -> None:
    client = Untallied("x" * 402)
    budget = TokenBudget(None)
    result = run_chain(ONE_STEP, {"openrouter": client}, CONTEXT, policy=POLICY,
                       sleep=sleeps.append, budget=budget)
    [request] = client.requests
    assert result.input_tokens == (len(SYSTEM_PROMPT) + len(request.user)) // 4
    assert result.output_tokens == 100
    assert result.steps[0].input_tokens is None  # the step shows what the provider said
    assert budget.used == result.input_tokens + result.output_tokens


def test_concurrent_spending_is_counted_exactly() -> None:
    budget = TokenBudget(None)
    start = threading.Barrier(8)

    def spend() -> None:
        start.wait()
        for _ in range(5000):
            budget.spend(3)

    threads = [threading.Thread(target=spend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert budget.used == 8 * 5000 * 3


def test_chains_in_threads_share_one_budget(sleeps: list[float]) -> None:
    budget = TokenBudget(None)
    client = Untallied("y" * 40)
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(
            lambda _: run_chain(ONE_STEP, {"openrouter": client}, CONTEXT, policy=POLICY,
                                sleep=sleeps.append, budget=budget),
            range(24)))
    assert all(r.ok for r in results)
    assert budget.used == sum(r.input_tokens + r.output_tokens for r in results)
