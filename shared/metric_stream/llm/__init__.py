"""LLM analysis: provider clients and the analysis chain runner (SPEC step 4)."""

from metric_stream.llm.budget import TokenBudget
from metric_stream.llm.chain import ChainContext, ChainResult, StepResult, render_prompt, run_chain
from metric_stream.llm.clients import (
    AnthropicClient,
    GeminiClient,
    LLMAnswer,
    LLMClient,
    LLMError,
    LLMRequest,
    OpenRouterClient,
    clients_from_settings,
    complete_with_retries,
)

__all__ = [
    "AnthropicClient",
    "ChainContext",
    "ChainResult",
    "GeminiClient",
    "LLMAnswer",
    "LLMClient",
    "LLMError",
    "LLMRequest",
    "OpenRouterClient",
    "StepResult",
    "TokenBudget",
    "clients_from_settings",
    "complete_with_retries",
    "render_prompt",
    "run_chain",
]
