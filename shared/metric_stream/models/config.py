"""`config:system`: the operator-editable settings of the cycle, with SPEC's defaults."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from metric_stream.models.base import AdminModel, Id, Timestamp


class RetryPolicy(AdminModel):
    """How many retries after the first try, and the wait before each (seconds)."""

    retries: int = Field(ge=0, le=10)
    delays_s: list[float] = Field(max_length=10)

    @model_validator(mode="after")
    def _one_delay_per_retry(self) -> RetryPolicy:
        if len(self.delays_s) != self.retries:
            raise ValueError(
                f"delaysS must give one wait per retry ({self.retries}), got {len(self.delays_s)}"
            )
        if any(d < 0 or d > 3600 for d in self.delays_s):
            raise ValueError("each delay must be between 0 and 3600 seconds")
        return self

    def delay(self, retry_number: int) -> float:
        """The wait before retry `retry_number` (1-based)."""
        return self.delays_s[min(retry_number, len(self.delays_s)) - 1] if self.delays_s else 0.0


class RetryConfig(AdminModel):
    collection: RetryPolicy = RetryPolicy(retries=3, delays_s=[1, 2, 4])
    chart: RetryPolicy = RetryPolicy(retries=3, delays_s=[1, 2, 4])
    llm: RetryPolicy = RetryPolicy(retries=2, delays_s=[2, 4])
    delivery: RetryPolicy = RetryPolicy(retries=2, delays_s=[5, 10])


class FallbackConfig(AdminModel):
    """What happens when a part fails. Collection failures always skip the KPI for this
    cycle and are reported; these are the choices the operator has."""

    chart: Literal["image", "text"] = "image"
    chart_text: str = Field(default="Chart unavailable for this cycle.", max_length=500)
    llm_note: bool = True
    retry_failed_deliveries_next_run: bool = True


DEFAULT_DISCLAIMER = (
    "Partial data: some indicators could not be collected for this report and are "
    "listed below. Every other section is complete."
)


class JobLifecycleConfig(AdminModel):
    fan_in_timeout_s: int = Field(default=1800, ge=10, le=86_400)
    deliver_partial: bool = True
    partial_disclaimer: str = Field(default=DEFAULT_DISCLAIMER, min_length=1, max_length=2000)
    poll_interval_s: int = Field(default=30, ge=1, le=3600)


Provider = Literal["openrouter", "gemini", "anthropic"]
StepKind = Literal["image", "numerical", "technical", "synthesis"]


class AnalysisStep(AdminModel):
    """One LLM step: its provider and model, and its prompt as a JSON structure."""

    kind: StepKind
    provider: Provider
    model: str = Field(min_length=1, max_length=200)
    prompt: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True


def _default_steps() -> list[AnalysisStep]:
    return [
        AnalysisStep(kind="image", provider="gemini", model="gemini-2.5-flash",
                     prompt={"role": "chart reader",
                             "task": "Describe the trend, levels and anomalies in this chart."}),
        AnalysisStep(kind="numerical", provider="openrouter", model="openai/gpt-4o-mini",
                     prompt={"role": "quantitative analyst",
                             "task": "Interpret the computed statistics; do not invent numbers."}),
        AnalysisStep(kind="technical", provider="anthropic", model="claude-sonnet-4-5",
                     prompt={"role": "technical analyst",
                             "task": "Read moving averages, momentum and thresholds."}),
        AnalysisStep(kind="synthesis", provider="anthropic", model="claude-sonnet-4-5",
                     prompt={"role": "market editor",
                             "task": "Summarise what changed and why it matters, in 3 sentences."}),
    ]


class AnalysisChain(AdminModel):
    steps: list[AnalysisStep] = Field(default_factory=_default_steps, min_length=1, max_length=10)


class LlmConfig(AdminModel):
    """How the analysis chains call the LLM providers (keys come from the environment)."""

    timeout_s: float = Field(default=60, gt=0, le=600)
    max_tokens: int = Field(default=1024, ge=16, le=32_000)
    temperature: float = Field(default=0.2, ge=0, le=2)
    concurrency: int = Field(default=8, ge=1, le=64)
    """Deep dives run at most this many at a time."""
    job_token_budget: int | None = Field(default=2_000_000, ge=1_000)
    """Input + output tokens one job may spend; None for no limit."""
    max_answer_chars: int = Field(default=4_000, ge=200, le=100_000)
    consolidated: bool = True
    """Run the consolidated chain across all KPIs."""


class DeliveryConfig(AdminModel):
    """How reports go out (retries are `retry.delivery`)."""

    concurrency: int = Field(default=256, ge=1, le=4096)
    """Sends in flight at once, per sending process."""
    per_host: int = Field(default=128, ge=1, le=4096)
    """Connections to one host at once."""
    timeout_s: float = Field(default=10, gt=0, le=300)
    auto_disable_after_s: int = Field(default=5 * 86_400, ge=60, le=365 * 86_400)
    """An endpoint failing without a success for this long is disabled (Svix: 5 days)."""
    jitter: float = Field(default=0.2, ge=0, le=1)
    """Retry waits vary by up to this fraction, so retries do not arrive together."""
    storage_alert_bytes: int | None = Field(default=None, ge=1)
    """Alert the operator channels when storage passes this size."""
    processes: int = Field(default=0, ge=0, le=16)
    """Sending processes for a large delivery (1,000 sends or more): 0 means one per CPU
    (at most 4); 1 keeps every send in the stage's own process."""
    dead_letter_alert: int = Field(default=1, ge=1)
    """Alert when a queue's dead letters grow by at least this many since the last alert."""


class SystemConfig(AdminModel):
    retry: RetryConfig = Field(default_factory=RetryConfig)
    fallback: FallbackConfig = Field(default_factory=FallbackConfig)
    lifecycle: JobLifecycleConfig = Field(default_factory=JobLifecycleConfig)
    analysis_chains: dict[Id, AnalysisChain] = Field(
        default_factory=lambda: {"default": AnalysisChain()}
    )
    default_chain: Id = "default"
    llm: LlmConfig = Field(default_factory=LlmConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    retention_days: int = Field(default=365, ge=1, le=36_500)
    updated_at: Timestamp | None = None

    @model_validator(mode="after")
    def _default_chain_exists(self) -> SystemConfig:
        if self.default_chain not in self.analysis_chains:
            raise ValueError(f"defaultChain {self.default_chain!r} is not in analysisChains")
        return self
