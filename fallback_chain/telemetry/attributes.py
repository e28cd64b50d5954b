"""Attribute names: the OpenTelemetry GenAI semantic conventions where they apply
(https://opentelemetry.io/docs/specs/semconv/gen-ai/), ours under ``fallback_chain.*``.

Plain strings, so that using them imports nothing of OpenTelemetry.
"""

from __future__ import annotations

from typing import Any

from ..results import Attempt

# GenAI and general semantic conventions
OPERATION_NAME = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
SYSTEM = "gen_ai.system"  # the older name of gen_ai.provider.name; still read by many backends
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
REQUEST_SEED = "gen_ai.request.seed"
OUTPUT_TYPE = "gen_ai.output.type"
INPUT_MESSAGES = "gen_ai.input.messages"
ERROR_TYPE = "error.type"
HTTP_STATUS = "http.response.status_code"

# ours
CHAIN = "fallback_chain.chain"
REQUEST_ID = "fallback_chain.request_id"
PROVIDER = "fallback_chain.provider"
ATTEMPT = "fallback_chain.attempt"
OUTCOME = "fallback_chain.outcome"
STATUS_CODE = "fallback_chain.http.status_code"
PROVIDER_CODE = "fallback_chain.provider_code"
MESSAGE = "fallback_chain.message"
COST = "fallback_chain.cost_usd"
COST_SOURCE = "fallback_chain.cost_source"
ESTIMATED_COST = "fallback_chain.estimated_cost_usd"
RETRY_AFTER = "fallback_chain.retry_after_s"
COOLDOWN = "fallback_chain.cooldown_s"
BREAKER_STATE = "fallback_chain.breaker.state"
BREAKER_OLD = "fallback_chain.breaker.old_state"
BREAKER_NEW = "fallback_chain.breaker.new_state"
HEDGED = "fallback_chain.hedged"
STATUS = "fallback_chain.status"
ATTEMPTS = "fallback_chain.attempts"
IMAGES = "fallback_chain.images"
LATENCY = "fallback_chain.latency_s"
N = "fallback_chain.request.n"
SIZE = "fallback_chain.request.size"
QUALITY = "fallback_chain.request.quality"
FORMAT = "fallback_chain.request.output_format"
INPUT_IMAGES = "fallback_chain.request.input_images"
NEGATIVE_PROMPT = "fallback_chain.request.negative_prompt"
REVISED_PROMPT = "fallback_chain.response.revised_prompt"
BUDGET = "fallback_chain.budget"
THRESHOLD = "fallback_chain.budget.threshold"

#: The operation: image generation is multimodal content generation in the GenAI conventions.
OPERATION = "generate_content"

#: Our vendor ids -> the conventions' well-known ``gen_ai.provider.name`` values.
_GENAI_PROVIDERS = {"openai": "openai", "gemini": "gcp.gemini", "leonardo": "leonardo"}


def genai_provider(provider: str) -> str:
    """``gen_ai.provider.name`` for a provider of the chain (its own name when not a known
    vendor id, e.g. a FakeProvider or a third-party adapter)."""
    return _GENAI_PROVIDERS.get(provider, provider)


def attempt_labels(chain: str, attempt: Attempt) -> dict[str, Any]:
    """The metric attributes of one attempt: chain, provider, model, outcome (low cardinality:
    no request id, no message)."""
    return {CHAIN: chain, PROVIDER: attempt.provider, REQUEST_MODEL: attempt.model,
            OUTCOME: attempt.outcome.value}
