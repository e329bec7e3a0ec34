"""The LLM provider clients over real sockets.

The fake providers (`tests/llm_fakes.py`: the OpenRouter, Gemini and Anthropic APIs on
127.0.0.1, their paths, authentication, answer and error bodies) record what each client
sent and answer as a test scripts it. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from metric_stream.llm import (
    AnthropicClient,
    ChainContext,
    GeminiClient,
    LLMClient,
    LLMError,
    LLMRequest,
    OpenRouterClient,
    TokenBudget,
    complete_with_retries,
    render_prompt,
    run_chain,
)
from metric_stream.models.config import AnalysisChain, Provider, RetryConfig
from tests.llm_fakes import (
    ANTHROPIC_TYPE,
    GOOGLE_STATUS,
    KEY,
    MODELS,
    PROVIDERS,
    FakeProviders,
    Reply,
    error,
    error_body,
    ok,
    ok_body,
)

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDRfake-chart"
PNG_B64 = base64.b64encode(PNG).decode()
POLICY = RetryConfig().llm  # 2 retries, after 2 s and 4 s
CHAIN = AnalysisChain()
CONTEXT = ChainContext(name="BTC price", unit="USD", kpi_id="btc-price",
                       analytics={"latest": 97000.5, "change7d": 0.042},
                       chart=("image/png", PNG))
PROMPT = render_prompt(CHAIN.steps[0], CONTEXT, {})
SHORT_TIMEOUT_S = 0.2
SLOW_S = 2.0
"""How long a slow reply waits: far past the short timeout; cut short at shutdown."""


# --- fixtures ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server() -> Iterator[FakeProviders]:
    with FakeProviders(lambda call: ok(call.provider)) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeProviders) -> Iterator[FakeProviders]:
    server.reset()
    yield server
    assert server.unused() == {}, "scripted replies left unused"


def _local_only(request: httpx.Request) -> None:
    assert request.url.host == "127.0.0.1", f"{request.url} would leave this machine"


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    # trust_env=False: no proxy from the environment sits between the client and the fake
    with httpx.Client(trust_env=False, event_hooks={"request": [_local_only]}) as client:
        yield client


@pytest.fixture
def sleeps() -> list[float]:
    return []


ClientFactory = Callable[..., LLMClient]
CLIENT_TYPES: dict[Provider, Callable[..., LLMClient]] = {
    "openrouter": OpenRouterClient, "gemini": GeminiClient, "anthropic": AnthropicClient}


@pytest.fixture
def client_for(fake: FakeProviders, http: httpx.Client) -> ClientFactory:
    def make(provider: Provider, *, key: str = KEY,
             timeout_s: float = 5.0) -> LLMClient:
        return CLIENT_TYPES[provider](http, key, fake.base_url(provider), timeout_s=timeout_s)

    return make


@pytest.fixture(params=PROVIDERS)
def provider(request: pytest.FixtureRequest) -> Provider:
    value: Provider = request.param
    return value


def request_for(provider: Provider, **changes: Any) -> LLMRequest:
    return LLMRequest(**{"model": MODELS[provider], "system": "You are terse.", "user": PROMPT,
                         "images": (("image/png", PNG),), "max_tokens": 256,
                         "temperature": 0.1, **changes})


# --- what each adapter sends, and what it reads back --------------------------------------

def test_openrouter_sends_an_openai_chat_with_a_data_url_image(
    fake: FakeProviders, client_for: ClientFactory
) -> None:
    answer = client_for("openrouter").complete(request_for("openrouter"))
    [seen] = fake.calls
    assert seen.path == "/api/v1/chat/completions"
    assert seen.headers["authorization"] == f"Bearer {KEY}"
    assert seen.headers["content-type"] == "application/json"
    assert seen.body["model"] == "openai/gpt-4o-mini"
    assert seen.body["messages"][0] == {"role": "system", "content": "You are terse."}
    image, text = seen.body["messages"][1]["content"]
    assert image == {"type": "image_url",
                     "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}}
    assert text["type"] == "text"
    assert json.loads(text["text"])["instructions"] == CHAIN.steps[0].prompt
    assert (seen.body["max_tokens"], seen.body["temperature"]) == (256, 0.1)
    assert (answer.text, answer.provider, answer.model) == (
        "Fine.", "openrouter", "openai/gpt-4o-mini")
    assert (answer.input_tokens, answer.output_tokens, answer.truncated) == (120, 30, False)


def test_gemini_sends_inline_data_and_the_key_in_a_header(
    fake: FakeProviders, client_for: ClientFactory
) -> None:
    answer = client_for("gemini").complete(request_for("gemini"))
    [seen] = fake.calls
    assert seen.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert seen.headers["x-goog-api-key"] == KEY
    assert "key" not in seen.query
    assert "authorization" not in seen.headers
    assert seen.body["system_instruction"] == {"parts": [{"text": "You are terse."}]}
    [content] = seen.body["contents"]
    image, text = content["parts"]
    assert content["role"] == "user"
    assert image == {"inline_data": {"mime_type": "image/png", "data": PNG_B64}}
    assert json.loads(text["text"])["kpi"] == {
        "id": "btc-price", "name": "BTC price", "unit": "USD"}
    assert seen.body["generation_config"] == {"max_output_tokens": 256, "temperature": 0.1}
    assert (answer.text, answer.provider, answer.model) == (
        "Fine.", "gemini", "gemini-2.5-flash")
    assert (answer.input_tokens, answer.output_tokens, answer.truncated) == (300, 20, False)


def test_anthropic_sends_a_base64_image_source(
    fake: FakeProviders, client_for: ClientFactory
) -> None:
    answer = client_for("anthropic").complete(request_for("anthropic"))
    [seen] = fake.calls
    assert seen.path == "/v1/messages"
    assert seen.headers["x-api-key"] == KEY
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in seen.headers
    assert (seen.body["model"], seen.body["system"]) == ("claude-sonnet-4-5", "You are terse.")
    [message] = seen.body["messages"]
    image, text = message["content"]
    assert message["role"] == "user"
    assert image == {"type": "image",
                     "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}}
    assert json.loads(text["text"])["chartAttached"] is True
    assert (seen.body["max_tokens"], seen.body["temperature"]) == (256, 0.1)
    assert (answer.text, answer.provider, answer.model) == (
        "Fine.", "anthropic", "claude-sonnet-4-5")
    assert (answer.input_tokens, answer.output_tokens, answer.truncated) == (200, 40, False)


def test_a_wrong_key_is_refused_once_and_not_retried(
    provider: Provider, fake: FakeProviders, client_for: ClientFactory, sleeps: list[float]
) -> None:
    client = client_for(provider, key="sk-wrong-key")
    with pytest.raises(LLMError) as info:
        complete_with_retries(client, request_for(provider), policy=POLICY, sleep=sleeps.append)
    assert info.value.status in (400, 401)
    assert not info.value.retryable
    assert len(fake.calls) == 1
    assert sleeps == []


# --- provider errors ---------------------------------------------------------------------

def test_429_waits_the_retry_after_then_answers(
    provider: Provider, fake: FakeProviders, client_for: ClientFactory, sleeps: list[float]
) -> None:
    fake.script(provider, error(provider, 429, "Rate limit exceeded", retry_after="3"),
                ok(provider, "Second time lucky."))
    answer = complete_with_retries(client_for(provider), request_for(provider),
                                   policy=POLICY, sleep=sleeps.append)
    assert answer.text == "Second time lucky."
    assert len(fake.calls) == 2
    assert fake.calls[0].body == fake.calls[1].body
    assert sleeps == [3.0]


def test_gemini_retry_delay_in_the_error_body_is_waited(
    fake: FakeProviders, client_for: ClientFactory, sleeps: list[float]
) -> None:
    body = error_body("gemini", 429, "Quota exceeded for metric generate_content_requests")
    body["error"]["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                 "retryDelay": "27s"}]
    fake.script("gemini", Reply(429, body), ok("gemini"))
    answer = complete_with_retries(client_for("gemini"), request_for("gemini"),
                                   policy=POLICY, sleep=sleeps.append)
    assert answer.text == "Fine."
    assert sleeps == [27.0]


@pytest.mark.parametrize("status", [400, 403])
def test_the_providers_error_is_in_the_message_and_the_key_is_not(
    provider: Provider, status: int, fake: FakeProviders,
    client_for: ClientFactory, sleeps: list[float],
) -> None:
    fake.script(provider, error(provider, status, f"Key {KEY} may not use this model"))
    client = client_for(provider)
    with pytest.raises(LLMError) as info:
        complete_with_retries(client, request_for(provider), policy=POLICY, sleep=sleeps.append)
    failure = info.value
    assert (failure.provider, failure.status, failure.retryable) == (provider, status, False)
    expected = {"openrouter": "", "gemini": f"{GOOGLE_STATUS[status]}: ",
                "anthropic": f"{ANTHROPIC_TYPE[status]}: "}[provider]
    assert failure.message == f"{expected}Key *** may not use this model"
    assert KEY not in str(failure)
    assert KEY not in repr(failure)
    assert KEY not in repr(client)
    assert len(fake.calls) == 1
    assert sleeps == []


SERVER_ERRORS: dict[Provider, tuple[int, str]] = {
    "openrouter": (502, "Provider returned error"),
    "gemini": (503, "The model is overloaded. Please try again later."),
    "anthropic": (529, "Overloaded"),
}


def test_server_errors_are_retried_then_fail_after_the_policy_retries(
    provider: Provider, fake: FakeProviders, client_for: ClientFactory, sleeps: list[float]
) -> None:
    status, message = SERVER_ERRORS[provider]
    fake.script(provider, error(provider, 500, "Internal error"),
                *(error(provider, status, message) for _ in range(2)))
    with pytest.raises(LLMError) as info:
        complete_with_retries(client_for(provider), request_for(provider),
                              policy=POLICY, sleep=sleeps.append)
    assert (info.value.status, info.value.retryable) == (status, True)
    assert message in str(info.value)
    assert len(fake.calls) == POLICY.retries + 1
    assert sleeps == [2.0, 4.0]


def test_a_timeout_is_a_retryable_error(
    provider: Provider, fake: FakeProviders, client_for: ClientFactory, sleeps: list[float]
) -> None:
    slow = Reply(body=ok_body(provider, "Too late."), delay_s=SLOW_S)
    fake.script(provider, slow, slow, ok(provider, "In time."))
    client = client_for(provider, timeout_s=SHORT_TIMEOUT_S)
    with pytest.raises(LLMError) as info:
        client.complete(request_for(provider))
    assert (info.value.status, info.value.retryable) == (None, True)
    assert "timeout" in info.value.message

    answer = complete_with_retries(client, request_for(provider),
                                   policy=POLICY, sleep=sleeps.append)
    assert answer.text == "In time."
    assert len(fake.calls) == 3
    assert sleeps == [2.0]


# --- bad answers -------------------------------------------------------------------------

EMPTY_ANSWERS: list[tuple[Provider, dict[str, Any]]] = [
    ("openrouter", ok_body("openrouter", "")),
    ("openrouter", ok_body("openrouter", "  \n\t ")),
    ("openrouter", ok_body("openrouter", None)),
    ("gemini", ok_body("gemini", " ")),
    ("gemini", ok_body("gemini", None)),
    ("gemini", {"usageMetadata": {"promptTokenCount": 300}, "modelVersion": "gemini-2.5-flash"}),
    ("anthropic", ok_body("anthropic", None)),
    ("anthropic", ok_body("anthropic", "\n\n")),
]


@pytest.mark.parametrize(("provider", "body"), EMPTY_ANSWERS)
def test_an_empty_answer_is_retried(
    provider: Provider, body: dict[str, Any], fake: FakeProviders, client_for: ClientFactory,
    sleeps: list[float],
) -> None:
    fake.script(provider, Reply(body=body), Reply(body=body))
    client = client_for(provider)
    with pytest.raises(LLMError, match="empty answer") as info:
        client.complete(request_for(provider))
    assert (info.value.status, info.value.retryable) == (200, True)

    answer = complete_with_retries(client, request_for(provider),
                                   policy=POLICY, sleep=sleeps.append)
    assert answer.text == "Fine."
    assert sleeps == [2.0]


def _gemini_safety_stop() -> dict[str, Any]:
    body = ok_body("gemini")
    body["candidates"] = [{"finishReason": "SAFETY", "index": 0, "safetyRatings": [
        {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}]}]
    return body


def _openrouter_filtered() -> dict[str, Any]:
    body = ok_body("openrouter", None)
    body["choices"][0]["finish_reason"] = "content_filter"
    return body


def _anthropic_refusal() -> dict[str, Any]:
    return ok_body("anthropic", None) | {"stop_reason": "refusal"}


BLOCKED_ANSWERS: list[tuple[Provider, dict[str, Any], str]] = [
    ("gemini", _gemini_safety_stop(), "SAFETY"),
    ("gemini", {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}},
     "PROHIBITED_CONTENT"),
    ("openrouter", _openrouter_filtered(), "content_filter"),
    ("anthropic", _anthropic_refusal(), "refusal"),
]


@pytest.mark.parametrize(("provider", "body", "reason"), BLOCKED_ANSWERS)
def test_an_answer_the_provider_blocked_is_not_retried(
    provider: Provider, body: dict[str, Any], reason: str, fake: FakeProviders,
    client_for: ClientFactory, sleeps: list[float],
) -> None:
    fake.script(provider, Reply(body=body))
    with pytest.raises(LLMError) as info:
        complete_with_retries(client_for(provider), request_for(provider),
                              policy=POLICY, sleep=sleeps.append)
    assert info.value.message == f"empty answer: the provider blocked it ({reason})"
    assert (info.value.status, info.value.retryable) == (200, False)
    assert sleeps == []


@pytest.mark.parametrize("body", [b"<html><body>502 Bad Gateway</body></html>",
                                  b'{"choices": [{"message": '])
def test_a_body_that_is_not_json_is_retried(
    provider: Provider, body: bytes, fake: FakeProviders, client_for: ClientFactory,
    sleeps: list[float],
) -> None:
    not_json = Reply(body=body, headers={"Content-Type": "text/html"})
    fake.script(provider, not_json, not_json)
    client = client_for(provider)
    with pytest.raises(LLMError, match=r"answer is not JSON \(text/html\)") as info:
        client.complete(request_for(provider))
    assert (info.value.status, info.value.retryable) == (200, True)

    answer = complete_with_retries(client, request_for(provider),
                                   policy=POLICY, sleep=sleeps.append)
    assert answer.text == "Fine."
    assert sleeps == [2.0]


WRONG_SHAPES: list[tuple[Provider, Any]] = [
    ("openrouter", ["not", "an", "object"]),
    ("openrouter", {"choices": []}),
    ("openrouter", {"choices": [{"message": {"content": 42}}]}),
    ("gemini", {"candidates": [{"content": {"parts": "plain text"}}]}),
    ("gemini", {"candidates": "none"}),
    ("anthropic", {"id": "msg_01", "type": "message"}),
    ("anthropic", {"content": "plain text"}),
]


@pytest.mark.parametrize(("provider", "body"), WRONG_SHAPES)
def test_json_of_the_wrong_shape_is_not_retried(
    provider: Provider, body: Any, fake: FakeProviders, client_for: ClientFactory,
    sleeps: list[float],
) -> None:
    fake.script(provider, Reply(body=body))
    with pytest.raises(LLMError, match="unexpected answer shape") as info:
        complete_with_retries(client_for(provider), request_for(provider),
                              policy=POLICY, sleep=sleeps.append)
    assert (info.value.status, info.value.retryable) == (200, False)
    assert len(fake.calls) == 1


def test_openrouter_error_inside_a_200_takes_its_code(
    fake: FakeProviders, client_for: ClientFactory, sleeps: list[float]
) -> None:
    fake.script("openrouter", Reply(body=error_body("openrouter", 502, "Upstream timed out")),
                ok("openrouter"))
    answer = complete_with_retries(client_for("openrouter"), request_for("openrouter"),
                                   policy=POLICY, sleep=sleeps.append)
    assert answer.text == "Fine."
    assert sleeps == [2.0]

    fake.script("openrouter", Reply(body=error_body("openrouter", 400, "Bad image")))
    with pytest.raises(LLMError) as info:
        client_for("openrouter").complete(request_for("openrouter"))
    assert (info.value.status, info.value.retryable, info.value.message) == (
        400, False, "Bad image")


LONG_ANSWER = " ".join(f"word{i}" for i in range(1000))  # 5889 characters


@pytest.mark.parametrize("limit", [None, 50])
def test_an_overlong_answer_is_cut_at_a_word_boundary(
    provider: Provider, limit: int | None, fake: FakeProviders, client_for: ClientFactory
) -> None:
    fake.script(provider, ok(provider, LONG_ANSWER))
    request = request_for(provider, **({} if limit is None else {"max_answer_chars": limit}))
    answer = client_for(provider).complete(request)
    kept = answer.text.removesuffix("…")
    assert answer.truncated
    assert answer.text.endswith("…")
    assert len(answer.text) <= request.max_answer_chars
    assert len(answer.text) > request.max_answer_chars - len(" word999")
    assert LONG_ANSWER.startswith(kept)
    assert LONG_ANSWER[len(kept)] == " "  # the last word kept is whole


# --- the chain, end to end ---------------------------------------------------------------

def test_the_chain_runs_against_all_three_providers_within_its_budget(
    fake: FakeProviders, client_for: ClientFactory, sleeps: list[float]
) -> None:
    clients = {p: client_for(p) for p in PROVIDERS}
    budget = TokenBudget(10_000)
    result = run_chain(CHAIN, clients, CONTEXT, policy=POLICY, sleep=sleeps.append,
                       budget=budget)
    assert result.status == "ok"
    assert [s.provider for s in result.steps] == ["gemini", "openrouter", "anthropic",
                                                  "anthropic"]
    assert [s.path for s in fake.calls] == [
        "/v1beta/models/gemini-2.5-flash:generateContent", "/api/v1/chat/completions",
        "/v1/messages", "/v1/messages"]
    assert (result.input_tokens, result.output_tokens) == (300 + 120 + 200 + 200,
                                                           20 + 30 + 40 + 40)
    assert budget.used == 950
    assert sleeps == []
