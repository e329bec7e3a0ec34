"""LLM provider clients (OpenRouter, Gemini, Anthropic) over httpx, and retries.

Each client makes one try and raises `LLMError`; `complete_with_retries` applies a
`RetryPolicy` (429, 408, 5xx, timeouts and transport errors are retried; other 4xx are not).
"""

from __future__ import annotations

import base64
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from metric_stream.models.config import Provider, RetryPolicy
from metric_stream.settings import Settings

MAX_RETRY_AFTER_S = 120.0
ANTHROPIC_VERSION = "2023-06-01"


@dataclass(frozen=True)
class LLMRequest:
    model: str
    system: str
    user: str
    images: tuple[tuple[str, bytes], ...] = ()
    """(mime type, bytes) of each image, sent before the text."""
    max_tokens: int = 1024
    temperature: float = 0.2


@dataclass(frozen=True)
class LLMAnswer:
    text: str
    model: str
    provider: Provider
    latency_ms: float
    input_tokens: int | None = None
    output_tokens: int | None = None


class LLMError(Exception):
    """A provider call that failed; the message never holds the API key."""

    def __init__(
        self,
        provider: Provider,
        status: int | None,
        message: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        self.provider = provider
        self.status = status
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after
        super().__init__(f"{provider} LLM call failed ({status or 'no status'}): {message}")


class LLMClient(Protocol):
    def complete(self, request: LLMRequest) -> LLMAnswer: ...


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _error_message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return response.reason_phrase or "error"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class _HttpLLMClient(ABC):
    provider: Provider

    def __init__(
        self, http: httpx.Client, api_key: SecretStr | str, base_url: str,
        *, timeout_s: float = 60.0,
    ) -> None:
        self._http = http
        self._key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        self._base = base_url.rstrip("/")
        self._timeout = timeout_s

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._base!r})"

    def _fail(self, status: int | None, message: str, **kwargs: Any) -> LLMError:
        if self._key:
            message = message.replace(self._key, "***")
        return LLMError(self.provider, status, message[:500], **kwargs)

    def _post(self, url: str, headers: Mapping[str, str], body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self._http.post(url, headers=dict(headers), json=body,
                                       timeout=self._timeout)
        except httpx.TimeoutException as exc:
            raise self._fail(None, f"timeout: {type(exc).__name__}", retryable=True) from None
        except httpx.TransportError as exc:
            raise self._fail(None, f"transport error: {type(exc).__name__}",
                             retryable=True) from None
        if response.status_code >= 400:
            status = response.status_code
            retryable = status in (408, 429) or status >= 500
            raise self._fail(status, _error_message(response), retryable=retryable,
                             retry_after=_retry_after(response.headers.get("retry-after")))
        try:
            data = response.json()
        except ValueError:
            raise self._fail(response.status_code, "answer is not JSON") from None
        if not isinstance(data, dict):
            raise self._fail(response.status_code, "answer is not a JSON object")
        return data

    def complete(self, request: LLMRequest) -> LLMAnswer:
        started = time.perf_counter()
        url, headers, body = self._build(request)
        data = self._post(url, headers, body)
        try:
            text, model, tokens_in, tokens_out = self._parse(data)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise self._fail(200, f"unexpected answer shape: {exc!r}") from None
        if not text.strip():
            raise self._fail(200, "empty answer")
        return LLMAnswer(
            text=text.strip(), model=model or request.model, provider=self.provider,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            input_tokens=tokens_in, output_tokens=tokens_out,
        )

    @abstractmethod
    def _build(self, request: LLMRequest) -> tuple[str, dict[str, str], dict[str, Any]]:
        """The provider's URL, headers and JSON body for a request."""

    @abstractmethod
    def _parse(self, data: dict[str, Any]) -> tuple[str, str | None, int | None, int | None]:
        """Text, model, input and output tokens from the provider's answer."""


class OpenRouterClient(_HttpLLMClient):
    """`POST {base}/chat/completions`, OpenAI-style messages."""

    provider: Provider = "openrouter"

    def _build(self, request: LLMRequest) -> tuple[str, dict[str, str], dict[str, Any]]:
        content: list[dict[str, Any]] = [
            {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{_b64(data)}"}}
            for mime, data in request.images
        ]
        content.append({"type": "text", "text": request.user})
        body = {
            "model": request.model,
            "messages": [
                {"role": "system", "content": request.system},
                {"role": "user", "content": content},
            ],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        return (f"{self._base}/chat/completions",
                {"Authorization": f"Bearer {self._key}"}, body)

    def _parse(self, data: dict[str, Any]) -> tuple[str, str | None, int | None, int | None]:
        if "error" in data:
            error = data["error"]
            message = error.get("message", "error") if isinstance(error, dict) else str(error)
            raise ValueError(message)
        content = data["choices"][0]["message"]["content"]
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            raise TypeError("content is not text")
        usage = data.get("usage") or {}
        return (content, data.get("model"), _int_or_none(usage.get("prompt_tokens")),
                _int_or_none(usage.get("completion_tokens")))


class GeminiClient(_HttpLLMClient):
    """`POST {base}/models/{model}:generateContent` with `x-goog-api-key`."""

    provider: Provider = "gemini"

    def _build(self, request: LLMRequest) -> tuple[str, dict[str, str], dict[str, Any]]:
        parts: list[dict[str, Any]] = [
            {"inline_data": {"mime_type": mime, "data": _b64(data)}}
            for mime, data in request.images
        ]
        parts.append({"text": request.user})
        body = {
            "system_instruction": {"parts": [{"text": request.system}]},
            "contents": [{"role": "user", "parts": parts}],
            "generation_config": {
                "max_output_tokens": request.max_tokens,
                "temperature": request.temperature,
            },
        }
        return (f"{self._base}/models/{request.model}:generateContent",
                {"x-goog-api-key": self._key}, body)

    def _parse(self, data: dict[str, Any]) -> tuple[str, str | None, int | None, int | None]:
        candidates = data.get("candidates") or []
        if not candidates:
            reason = (data.get("promptFeedback") or {}).get("blockReason", "no candidates")
            raise ValueError(f"no answer: {reason}")
        parts = candidates[0]["content"]["parts"]
        text = "".join(p["text"] for p in parts if isinstance(p.get("text"), str))
        usage = data.get("usageMetadata") or {}
        return (text, data.get("modelVersion"), _int_or_none(usage.get("promptTokenCount")),
                _int_or_none(usage.get("candidatesTokenCount")))


class AnthropicClient(_HttpLLMClient):
    """`POST {base}/messages` with `x-api-key` and `anthropic-version`."""

    provider: Provider = "anthropic"

    def _build(self, request: LLMRequest) -> tuple[str, dict[str, str], dict[str, Any]]:
        content: list[dict[str, Any]] = [
            {"type": "image",
             "source": {"type": "base64", "media_type": mime, "data": _b64(data)}}
            for mime, data in request.images
        ]
        content.append({"type": "text", "text": request.user})
        body = {
            "model": request.model,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "system": request.system,
            "messages": [{"role": "user", "content": content}],
        }
        headers = {"x-api-key": self._key, "anthropic-version": ANTHROPIC_VERSION}
        return f"{self._base}/messages", headers, body

    def _parse(self, data: dict[str, Any]) -> tuple[str, str | None, int | None, int | None]:
        blocks = data["content"]
        text = "".join(b["text"] for b in blocks if b.get("type") == "text")
        usage = data.get("usage") or {}
        return (text, data.get("model"), _int_or_none(usage.get("input_tokens")),
                _int_or_none(usage.get("output_tokens")))


def complete_with_retries(
    client: LLMClient,
    request: LLMRequest,
    *,
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
) -> LLMAnswer:
    """One try plus `policy.retries` retries of retryable errors; the last error is raised.
    A `Retry-After` (seconds) from the provider replaces the policy's wait."""
    retry = 0
    while True:
        try:
            return client.complete(request)
        except LLMError as exc:
            if not exc.retryable or retry >= policy.retries:
                raise
            retry += 1
            sleep(exc.retry_after if exc.retry_after is not None else policy.delay(retry))


def clients_from_settings(settings: Settings, http: httpx.Client) -> dict[Provider, LLMClient]:
    """A client for each provider whose API key is set."""
    clients: dict[Provider, LLMClient] = {}
    if settings.openrouter_api_key and settings.openrouter_api_key.get_secret_value():
        clients["openrouter"] = OpenRouterClient(
            http, settings.openrouter_api_key, settings.openrouter_base_url)
    if settings.gemini_api_key and settings.gemini_api_key.get_secret_value():
        clients["gemini"] = GeminiClient(http, settings.gemini_api_key, settings.gemini_base_url)
    if settings.anthropic_api_key and settings.anthropic_api_key.get_secret_value():
        clients["anthropic"] = AnthropicClient(
            http, settings.anthropic_api_key, settings.anthropic_base_url)
    return clients
