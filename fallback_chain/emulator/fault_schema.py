"""The fault file as pydantic models: which keys each table takes, their types, and the fault
tokens each vendor understands. ``FaultConfig`` (``faults.py``) validates with these; its
``rule()`` then builds the effective settings from the validated mapping."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StrictInt,
    create_model,
    field_validator,
    model_validator,
)

from .faults import (
    _LATENCY_PARAMS,
    RETRY_AFTER_FORMATS,
    parse_fault,
    parse_script,
    rates_problem,
    vendors,
)

RetryAfterFormat = Literal["seconds", "http-date", "ms", "both", "body", "none"]
Endpoint = Literal["generate", "poll", "image", "meta", "moderate"]
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


def _vendor_rules(vendor: str) -> tuple[type[Rules], type[Rules]]:
    """The rules of ``[VENDOR.models.MODEL]`` and of ``[VENDOR]`` (which also takes
    ``models``), checking fault tokens against ``vendor``'s kinds."""
    model_rules: type[Rules] = type(f"{vendor.title()}ModelRules", (Rules,), {"vendor": vendor})
    vendor_rules: type[Rules] = create_model(
        f"{vendor.title()}Rules", __base__=model_rules,
        models=(dict[str, model_rules], {}))  # type: ignore[valid-type]
    return model_rules, vendor_rules


@cache
def fault_file_model() -> type[BaseModel]:
    """A whole fault configuration: ``seed``, ``[default]`` and one table per emulated vendor
    (the vendors come from the registry, so a new vendor's table is accepted with no edit
    here)."""
    tables: dict[str, Any] = {}
    for vendor in vendors():
        _, vendor_rules = _vendor_rules(vendor)
        tables[vendor] = (vendor_rules, vendor_rules())
    model: type[BaseModel] = create_model(
        "FaultFile", __config__=_STRICT, seed=(StrictInt, 0), default=(Rules, Rules()),
        **tables)
    return model
