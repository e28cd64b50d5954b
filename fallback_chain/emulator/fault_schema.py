"""The fault file as pydantic models: which keys each table takes, their types, and the fault
tokens each vendor understands. ``FaultConfig`` (``faults.py``) validates with these; its
``rule()`` then builds the effective settings from the validated mapping."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StrictInt,
    field_validator,
    model_validator,
)

from .faults import (
    _LATENCY_PARAMS,
    RETRY_AFTER_FORMATS,
    parse_fault,
    parse_script,
    rates_problem,
)

RetryAfterFormat = Literal["seconds", "http-date", "ms", "both", "body", "none"]
Endpoint = Literal["generate", "poll", "image", "meta"]
Dist = Literal["fixed", "uniform", "normal", "lognormal", "exponential"]
assert set(RetryAfterFormat.__args__) == RETRY_AFTER_FORMATS  # type: ignore[attr-defined]

_STRICT = ConfigDict(extra="forbid")


def _number_is_fixed(value: Any) -> Any:
    """``latency = 20`` is ``{dist = "fixed", ms = 20}``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"dist": "fixed", "ms": value}
    return value


class LatencyTable(BaseModel):
    """``{dist = "uniform", min_ms = 5, max_ms = 20}``; the parameters depend on ``dist``."""

    model_config = ConfigDict(extra="allow")

    dist: Dist = "fixed"

    @model_validator(mode="after")
    def _params(self) -> LatencyTable:
        params = dict(self.model_extra or {})
        takes = _LATENCY_PARAMS[self.dist]
        unknown = sorted(set(params) - takes)
        if unknown:
            raise ValueError(f"a {self.dist!r} latency takes {', '.join(sorted(takes))}; "
                             f"not {', '.join(unknown)}")
        for key, value in params.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{key} must be a number (got {value!r})")
        return self


Latency = Annotated[LatencyTable, BeforeValidator(_number_is_fixed)]


class Rules(BaseModel):
    """The keys of ``[default]``, ``[VENDOR]`` and ``[VENDOR.models.MODEL]``."""

    model_config = _STRICT
    vendor: ClassVar[str | None] = None

    script: str | list[Any] | None = None
    rates: dict[str, float] | None = None
    latency: Latency | None = None
    latency_ms: Latency | None = None
    retry_after: float | None = None
    retry_after_format: RetryAfterFormat | None = None
    applies_to: list[Endpoint] | None = None
    hang_s: float | None = None
    job_delay_s: float | None = None
    url_ttl_s: float | None = None
    expired_status: Literal[403, 404, 410] | None = None

    @field_validator("script")
    @classmethod
    def _script(cls, value: str | list[Any] | None) -> str | list[Any] | None:
        if value is not None:
            parse_script(value, cls.vendor)
        return value

    @field_validator("rates")
    @classmethod
    def _rates(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is not None:
            for token in value:
                parse_fault(token, cls.vendor)
            problem = rates_problem(value.values())
            if problem:
                raise ValueError(problem)
        return value


class OpenAIModelRules(Rules):
    vendor = "openai"


class GeminiModelRules(Rules):
    vendor = "gemini"


class LeonardoModelRules(Rules):
    vendor = "leonardo"


class OpenAIRules(OpenAIModelRules):
    models: dict[str, OpenAIModelRules] = {}


class GeminiRules(GeminiModelRules):
    models: dict[str, GeminiModelRules] = {}


class LeonardoRules(LeonardoModelRules):
    models: dict[str, LeonardoModelRules] = {}


class FaultFile(BaseModel):
    """A whole fault configuration."""

    model_config = _STRICT

    seed: StrictInt = 0
    default: Rules = Rules()
    openai: OpenAIRules = OpenAIRules()
    gemini: GeminiRules = GeminiRules()
    leonardo: LeonardoRules = LeonardoRules()
