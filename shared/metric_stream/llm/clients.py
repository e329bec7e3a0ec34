"""LLM provider clients (OpenRouter, Gemini, Anthropic) over httpx, and retries.

Each client makes one try and raises `LLMError`; `complete_with_retries` applies a
`RetryPolicy` (429, 408, 5xx, timeouts and transport errors are retried; other 4xx are not).
A 200 whose body is not JSON, or whose answer is empty, is retried too (a proxy's error page,
a model that stopped early); an answer the provider blocked, or a JSON shape the client does
not know, is not: the same request gets the same answer.
"""

from __future__ import annotations

import base64
import re
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
MAX_ANSWER_CHARS = 4000
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
    max_answer_chars: int = MAX_ANSWER_CHARS
    """A longer answer is cut at a word boundary and ends with "…"."""

    def __post_init__(self) -> None:
        if self.max_answer_chars < 1:
            raise ValueError("max_answer_chars must be at least 1")


@dataclass(frozen=True)
class LLMAnswer:
    text: str
    model: str
    provider: Provider
    latency_ms: float
    input_tokens: int | None = None
    output_tokens: int | None = None
    truncated: bool = False
    """The provider's text was longer than `LLMRequest.max_answer_chars` and was cut."""


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


_GOOGLE_DELAY = re.compile(r"(\d+(?:\.\d+)?)s")
_LAST_WORD = re.compile(r"\S+$")


def _error_message(data: Any) -> str | None:
    """`{"error": {"message": ...}}` (OpenRouter), with Gemini's `status` or Anthropic's
    `type` in front when the body names one: `RESOURCE_EXHAUSTED: Quota exceeded`."""
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, str):
        return error
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return None
    kind = error.get("status") or error.get("type")
    return f"{kind}: {error['message']}" if isinstance(kind, str) else str(error["message"])


def _body_retry_after(data: Any) -> float | None:
    """Gemini's 429 says when to come back in a `RetryInfo` detail (`"retryDelay": "27s"`)."""
    error = data.get("error") if isinstance(data, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    for detail in details if isinstance(details, list) else ():
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        match = _GOOGLE_DELAY.fullmatch(delay) if isinstance(delay, str) else None
        if match:
            return _retry_after(match.group(1))
    return None


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def truncate_answer(text: str, max_chars: int) -> tuple[str, bool]:
    """`text` cut to at most `max_chars` characters at a word boundary, ending with "…";
    and whether it was cut. A single word longer than the limit is cut inside the word."""
    if len(text) <= max_chars:
        return text, False
    head = text[: max_chars - 1]
    if not text[max_chars - 1].isspace():
        partial_word = _LAST_WORD.search(head)
        if partial_word:
            head = head[: partial_word.start()].rstrip() or head
    return head.rstrip() + "…", True


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class _Parsed:
    """What a provider's answer holds, before the checks every provider shares."""

    text: str
    model: str | None
    input_tokens: int | None
    output_tokens: int | None
    stop_reason: str | None = None
    blocked: bool = False
    """The provider withheld the answer (safety, recitation, refusal)."""


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
        status = response.status_code
        data = _json_or_none(response)
        if status >= 400:
            message = (_error_message(data) or response.text[:300].strip()
                       or response.reason_phrase or "error")
            retry_after = _retry_after(response.headers.get("retry-after"))
            raise self._fail(status, message, retryable=status in (408, 429) or status >= 500,
                             retry_after=retry_after if retry_after is not None
                             else _body_retry_after(data))
        if data is None:
            kind = response.headers.get("content-type", "no content type")
            raise self._fail(status, f"answer is not JSON ({kind}): {response.text[:100]!r}",
                             retryable=True)
        if not isinstance(data, dict):
            raise self._fail(status, "unexpected answer shape: not a JSON object")
        return data

    def complete(self, request: LLMRequest) -> LLMAnswer:
        started = time.perf_counter()
        url, headers, body = self._build(request)
        data = self._post(url, headers, body)
        try:
            parsed = self._parse(data)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise self._fail(200, f"unexpected answer shape: {exc!r}") from None
        text = parsed.text.strip()
        if not text:
            reason = f" ({parsed.stop_reason})" if parsed.stop_reason else ""
            if parsed.blocked:
                raise self._fail(200, f"empty answer: the provider blocked it{reason}")
            raise self._fail(200, f"empty answer{reason}", retryable=True)
        text, truncated = truncate_answer(text, request.max_answer_chars)
        return LLMAnswer(
            text=text, model=parsed.model or request.model, provider=self.provider,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            input_tokens=parsed.input_tokens, output_tokens=parsed.output_tokens,
            truncated=truncated,
        )

    @abstractmethod
    def _build(self, request: LLMRequest) -> tuple[str, dict[str, str], dict[str, Any]]:
        """The provider's URL, headers and JSON body for a request."""

    @abstractmethod
    def _parse(self, data: dict[str, Any]) -> _Parsed:
        """Text, model, tokens and stop reason from the provider's answer."""


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

    def _parse(self, data: dict[str, Any]) -> _Parsed:
        if "error" in data:
            # OpenRouter reports an upstream failure after the 200 in the body, with its code.
            code = data["error"].get("code") if isinstance(data["error"], dict) else None
            status = code if isinstance(code, int) and not isinstance(code, bool) else None
            raise self._fail(status, _error_message(data) or "error in the answer",
                             retryable=status is None or status in (408, 429) or status >= 500)
        choice = data["choices"][0]
        content = choice["message"].get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if content is not None and not isinstance(content, str):
            raise TypeError("content is not text")
        usage = data.get("usage") or {}
        finish = choice.get("finish_reason")
        return _Parsed(
            text=content or "", model=data.get("model"),
            input_tokens=_int_or_none(usage.get("prompt_tokens")),
            output_tokens=_int_or_none(usage.get("completion_tokens")),
            stop_reason=finish, blocked=finish == "content_filter",
        )


_GEMINI_BLOCKED = frozenset({
    "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
})


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

    def _parse(self, data: dict[str, Any]) -> _Parsed:
        usage = data.get("usageMetadata") or {}
        tokens_in = _int_or_none(usage.get("promptTokenCount"))
        tokens_out = _int_or_none(usage.get("candidatesTokenCount"))
        candidates = data.get("candidates") or []
        if not candidates:
            blocked = (data.get("promptFeedback") or {}).get("blockReason")
            return _Parsed("", data.get("modelVersion"), tokens_in, tokens_out,
                           stop_reason=blocked, blocked=blocked is not None)
        candidate = candidates[0]
        # A blocked candidate comes without `content`, or with no `parts`.
        parts = (candidate.get("content") or {}).get("parts") or []
        text = "".join(p["text"] for p in parts if isinstance(p.get("text"), str))
        finish = candidate.get("finishReason")
        return _Parsed(text, data.get("modelVersion"), tokens_in, tokens_out,
                       stop_reason=finish, blocked=finish in _GEMINI_BLOCKED)


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

    def _parse(self, data: dict[str, Any]) -> _Parsed:
        blocks = data["content"]
        text = "".join(b["text"] for b in blocks if b.get("type") == "text")
        usage = data.get("usage") or {}
        stop = data.get("stop_reason")
        return _Parsed(
            text=text, model=data.get("model"),
            input_tokens=_int_or_none(usage.get("input_tokens")),
            output_tokens=_int_or_none(usage.get("output_tokens")),
            stop_reason=stop, blocked=stop == "refusal",
        )


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


def clients_from_settings(settings: Settings, http: httpx.Client, *, timeout_s: float = 60.0
                          ) -> dict[Provider, LLMClient]:
    """A client for each provider whose API key is set; each call times out after
    `timeout_s` seconds."""
    clients: dict[Provider, LLMClient] = {}
    if settings.openrouter_api_key and settings.openrouter_api_key.get_secret_value():
        clients["openrouter"] = OpenRouterClient(
            http, settings.openrouter_api_key, settings.openrouter_base_url, timeout_s=timeout_s)
    if settings.gemini_api_key and settings.gemini_api_key.get_secret_value():
        clients["gemini"] = GeminiClient(http, settings.gemini_api_key, settings.gemini_base_url,
                                         timeout_s=timeout_s)
    if settings.anthropic_api_key and settings.anthropic_api_key.get_secret_value():
        clients["anthropic"] = AnthropicClient(
            http, settings.anthropic_api_key, settings.anthropic_base_url, timeout_s=timeout_s)
    return clients
