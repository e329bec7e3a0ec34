"""Runs an analysis chain (SPEC step 4): image, numerical, technical, synthesis steps.

All or nothing: a step that fails after its retries fails the chain and no LLM text is
kept (the report goes out with the deterministic analytics only). A step whose provider
has no client (no API key) skips the chain before any call is made. A spent job token
budget fails the chain before its next step.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from metric_stream.llm.budget import TokenBudget
from metric_stream.llm.clients import (
    MAX_ANSWER_CHARS,
    LLMAnswer,
    LLMClient,
    LLMError,
    LLMRequest,
    complete_with_retries,
)
from metric_stream.models.config import AnalysisChain, AnalysisStep, Provider, RetryPolicy, StepKind

SYSTEM_PROMPT = (
    "You analyse crypto market indicators for a daily report. The user message is a JSON "
    "object: follow its `instructions`, rely only on the numbers in `analytics` and "
    "`previous` (and the chart, when one is attached), and answer in plain text without "
    "markdown."
)


@dataclass(frozen=True)
class ChainContext:
    """What the chain analyses: one KPI, or all of them (`consolidated`)."""

    name: str
    analytics: Mapping[str, Any]
    unit: str | None = None
    kpi_id: str | None = None
    consolidated: bool = False
    chart: tuple[str, bytes] | None = None
    """(mime type, bytes) of the rendered chart; without it the image step is left out."""


@dataclass(frozen=True)
class StepResult:
    kind: StepKind
    provider: Provider
    model: str
    text: str
    latency_ms: float
    input_tokens: int | None = None
    output_tokens: int | None = None
    truncated: bool = False


@dataclass(frozen=True)
class ChainResult:
    status: Literal["ok", "failed", "skipped"]
    steps: tuple[StepResult, ...] = ()
    """The steps' answers; empty unless `status` is `ok`."""
    reason: str | None = None
    failed_step: int | None = None
    """Index in `chain.steps` of the step that failed."""
    failed_kind: StepKind | None = None
    latency_ms: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    """Tokens of the steps answered, failed chains included, as spent from the budget:
    the provider's count, or `len(text) // 4` when it gave none."""
    calls: int = 0
    """Steps sent to a provider (a failed step counts; its retries do not)."""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def texts(self) -> dict[str, str]:
        """Each step's text by kind (`synthesis`, a repeated kind as `synthesis-2`)."""
        out: dict[str, str] = {}
        for step in self.steps if self.ok else ():
            out[_key(step.kind, out)] = step.text
        return out


def _key(kind: str, taken: Mapping[str, Any]) -> str:
    if kind not in taken:
        return kind
    n = 2
    while f"{kind}-{n}" in taken:
        n += 1
    return f"{kind}-{n}"


def _tokens_spent(request: LLMRequest, answer: LLMAnswer) -> tuple[int, int]:
    tokens_in = answer.input_tokens
    if tokens_in is None:
        tokens_in = (len(request.system) + len(request.user)) // 4
    tokens_out = answer.output_tokens
    if tokens_out is None:
        tokens_out = len(answer.text) // 4
    return tokens_in, tokens_out


def render_prompt(step: AnalysisStep, context: ChainContext, previous: Mapping[str, str]) -> str:
    """The user text of a step: deterministic JSON (sorted keys)."""
    kpi: dict[str, Any] = {"name": context.name, "unit": context.unit}
    if context.kpi_id is not None:
        kpi["id"] = context.kpi_id
    payload = {
        "step": step.kind,
        "scope": "consolidated" if context.consolidated else "kpi",
        "instructions": step.prompt,
        "kpi": kpi,
        "analytics": context.analytics,
        "previous": dict(previous),
        "chartAttached": step.kind == "image" and context.chart is not None,
        "answerFormat": "plain text",
    }
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)


def run_chain(
    chain: AnalysisChain,
    clients: Mapping[Provider, LLMClient],
    context: ChainContext,
    *,
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    max_tokens: int = 1024,
    temperature: float = 0.2,
    max_answer_chars: int = MAX_ANSWER_CHARS,
    budget: TokenBudget | None = None,
) -> ChainResult:
    planned = [
        (i, s) for i, s in enumerate(chain.steps)
        if s.enabled and (s.kind != "image" or context.chart is not None)
    ]
    if not planned:
        return ChainResult(status="skipped", reason="no step to run")
    for i, step in planned:
        if step.provider not in clients:
            return ChainResult(
                status="skipped",
                reason=f"no API key for provider {step.provider!r} (step {i}, {step.kind})",
            )
    started = time.perf_counter()
    previous: dict[str, str] = {}
    results: list[StepResult] = []
    tokens_in = tokens_out = calls = 0

    def failed(i: int, step: AnalysisStep, reason: str) -> ChainResult:
        return ChainResult(
            status="failed", reason=reason, failed_step=i, failed_kind=step.kind,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            input_tokens=tokens_in, output_tokens=tokens_out, calls=calls,
        )

    for i, step in planned:
        request = LLMRequest(
            model=step.model,
            system=SYSTEM_PROMPT,
            user=render_prompt(step, context, previous),
            images=(context.chart,) if step.kind == "image" and context.chart else (),
            max_tokens=max_tokens,
            temperature=temperature,
            max_answer_chars=max_answer_chars,
        )
        hold = (len(request.system) + len(request.user)) // 4 + max_tokens
        if budget is not None and not budget.reserve(hold):
            return failed(i, step, f"the job's LLM token budget ({budget.limit} tokens) is "
                                   "spent: this step could go over it")
        calls += 1
        try:
            answer = complete_with_retries(clients[step.provider], request,
                                           policy=policy, sleep=sleep)
        except LLMError as exc:
            if budget is not None:
                budget.settle(hold, 0)
            return failed(i, step, str(exc))
        step_in, step_out = _tokens_spent(request, answer)
        tokens_in += step_in
        tokens_out += step_out
        if budget is not None:
            budget.settle(hold, step_in + step_out)
        previous[_key(step.kind, previous)] = answer.text
        results.append(StepResult(
            kind=step.kind, provider=answer.provider, model=answer.model, text=answer.text,
            latency_ms=answer.latency_ms, input_tokens=answer.input_tokens,
            output_tokens=answer.output_tokens, truncated=answer.truncated,
        ))
    return ChainResult(status="ok", steps=tuple(results),
                       latency_ms=round((time.perf_counter() - started) * 1000, 3),
                       input_tokens=tokens_in, output_tokens=tokens_out, calls=calls)
