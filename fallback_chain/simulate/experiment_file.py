"""The experiment file as pydantic models: its sections, the keys each takes and their types.

``load_experiment``/``parse_experiment`` (``experiment.py``) validate a document with
:class:`ExperimentFile` first; the values of ``[workload]`` and ``[providers.NAME]`` (durations
like ``"20m"``, times of day, distributions) are then read by ``workload.py`` and
``profiles.py``, and each ``policy`` table by :class:`fallback_chain.Policy` itself.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

_STRICT = ConfigDict(extra="forbid")


class Header(BaseModel):
    """``[experiment]``."""

    model_config = _STRICT

    name: str | None = None
    seed: StrictInt = 0
    date: dt.date = dt.date(2026, 1, 1)
    timeline_bucket: str | float = 300.0

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

    name: str
    providers: list[str] | None = Field(default=None, min_length=1)
    order: Literal["given", "cost"] = "given"
    policy: dict[str, Any] = {}
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
