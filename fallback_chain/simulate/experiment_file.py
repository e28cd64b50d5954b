"""The experiment file as pydantic models: its sections, the keys each takes and their types.

``load_experiment``/``parse_experiment`` (``experiment.py``) validate a document with
:class:`ExperimentFile` first; the values of ``[workload]`` and ``[providers.NAME]`` (durations
like ``"20m"``, times of day, distributions) are then read by ``workload.py`` and
``profiles.py``, and each ``policy`` table by :class:`fallback_chain.Policy` itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    field_validator,
    model_validator,
)

from .errors import ExperimentError

_STRICT = ConfigDict(extra="forbid")
T = TypeVar("T", bound=BaseModel)


def _number(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number (got {value!r})")
    return value


#: A TOML number (neither ``true`` nor ``"1"`` is one here).
Number = Annotated[float, BeforeValidator(_number)]
def _text_or_number(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"expected text such as '10:00' or '20m', or a number (got {value!r})")
    return value


#: A time of day (``"10:00"``) or seconds since midnight, read by ``timeparse.time_of_day``;
#: or a duration (``"20m"``) or seconds, read by ``timeparse.duration``.
TimeOfDay = Annotated[str | float, BeforeValidator(_text_or_number)]
Duration = Annotated[str | float, BeforeValidator(_text_or_number)]
#: Seconds, ``[low, high]`` or a distribution table; read by ``distributions.parse_distribution``.
DistributionSpec = Any


def table(model: type[T], spec: object, where: str) -> T:
    """``spec`` validated as ``model``; an ``ExperimentError`` names ``where`` plus the key
    (and lists every other problem found)."""
    from ..config import tomlmodel

    if not isinstance(spec, Mapping):
        raise ExperimentError(where, "expected a table")
    try:
        return tomlmodel.validate(model, spec, document=False)
    except tomlmodel.TomlProblems as exc:
        fields = [f"{where}.{p.field}" if p.field else where for p in exc.problems]
        first, *rest = zip(fields, exc.problems, strict=True)
        raise ExperimentError(first[0], first[1].message,
                              more=tuple(f"{f}: {p.message}" for f, p in rest)) from None


class OutageTable(BaseModel):
    """One element of a profile's ``outages``."""

    model_config = _STRICT

    start: TimeOfDay
    end: TimeOfDay
    outcome: str | list[str] | None = None
    faults: dict[str, Number] | None = None
    rate: Number = Field(default=1.0, ge=0.0, le=1.0)
    latency: DistributionSpec = None

    @model_validator(mode="after")
    def _one_kind(self) -> OutageTable:
        if self.outcome is not None and self.faults is not None:
            raise ValueError("give either outcome or faults, not both")
        if isinstance(self.outcome, list) and not self.outcome:
            raise ValueError("outcome: expected an outcome or a list of them")
        return self


def _one_default_kind() -> list[dict[str, Any]]:
    return [{}]


class RatePieceTable(BaseModel):
    """One element of ``rate_schedule``: ``{from = "09:00", per_min = 30}``."""

    model_config = _STRICT

    start: TimeOfDay = Field(alias="from")
    per_min: Number


class WorkloadTable(BaseModel):
    """``[workload]`` (see ``workload.py`` for what each key means); each element of ``mix``
    is checked as an ``ImageRequest``."""

    model_config = _STRICT

    start: TimeOfDay = 0.0
    duration: Duration | None = None
    requests: StrictInt | None = None
    arrivals: Literal["poisson", "even"] = "poisson"
    rate_per_min: Number | None = None
    rate_schedule: list[RatePieceTable] | None = Field(default=None, min_length=1)
    mix: list[dict[str, Any]] = Field(default_factory=_one_default_kind, min_length=1)

    @model_validator(mode="after")
    def _one_rate(self) -> WorkloadTable:
        if self.rate_per_min is not None and self.rate_schedule is not None:
            raise ValueError("give rate_per_min or rate_schedule, not both")
        return self


class ProfileTable(BaseModel):
    """A ``[providers.NAME]`` table (see ``profiles.py`` for what each key means)."""

    model_config = _STRICT

    model: str | None = None
    price_usd: Number | None = None
    latency: DistributionSpec = None
    error_latency: DistributionSpec = None
    latency_by_outcome: dict[str, DistributionSpec] | None = None
    faults: dict[str, Number] | None = None
    outages: list[OutageTable] | None = None
    images_per_minute: Number | None = None
    retry_after_s: Number | None = None
    billed_on_failure: dict[str, Number] | None = None
    max_n: StrictInt | None = None


class Header(BaseModel):
    """``[experiment]``."""

    model_config = _STRICT

    #: The experiment's title, in the tables, the plot and ``summary.json``.
    name: str | None = None
    #: Seeds every random stream (arrivals, mix, each provider, the router's jitter);
    #: ``--seed`` overrides it.
    seed: StrictInt = 0
    #: The simulated day (UTC, ``YYYY-MM-DD``); daily budgets count against it.
    date: dt.date = dt.date(2026, 1, 1)
    #: The width of the rows of ``timeline.csv`` and of the plot's timeline points
    #: (``"10m"``, ``"1h"`` or seconds).
    timeline_bucket: Duration = 300.0

    @field_validator("date", mode="before")
    @classmethod
    def _date(cls, value: object) -> object:
        if isinstance(value, dt.datetime):
            raise ValueError(f"expected a date, not a date and time (got {value!r})")
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"expected YYYY-MM-DD (got {value!r})") from None
        return value


class ConfigurationTable(BaseModel):
    """One ``[[configurations]]`` table."""

    model_config = _STRICT

    #: The configuration's name, a row of every table.
    name: str
    #: The profiles it chains, in order (default: every ``[providers.NAME]``, in file order).
    providers: list[str] | None = Field(default=None, min_length=1)
    #: ``"given"`` or ``"cost"``, as ``Chain(order=...)``.
    order: Literal["given", "cost"] = "given"
    #: ``Policy`` fields merged over the file's ``[policy]``.
    policy: dict[str, Any] = {}
    #: A budget, as a config file's ``budget`` (``per_request_usd``, ``daily_usd``, ...).
    budget: dict[str, Any] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("every configuration needs a name")
        return value

    @field_validator("providers")
    @classmethod
    def _providers(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("names a provider twice")
        return value


class ExperimentFile(BaseModel):
    """A whole experiment file."""

    model_config = _STRICT

    experiment: Header = Header()
    policy: dict[str, Any] = {}
    workload: dict[str, Any] | None = None
    providers: dict[str, dict[str, Any]] = {}
    configurations: list[ConfigurationTable] | None = None  # at least one: checked by the reader
