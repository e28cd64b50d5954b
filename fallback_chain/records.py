"""The model catalogue's records: one file per vendor, ``providers/<vendor>/models.json``, one
record per model holding everything known about it: capabilities (by family), lifecycle
(status, shutdown date, replacement, with its source) and prices (with their source and date).

The capability catalogue (:mod:`fallback_chain.providers.catalogue`) and the price catalogue
(:class:`fallback_chain.cost.PriceCatalogue`) both read these records, so a model's status and
shutdown date are written once. A vendor's file sits in its own folder; a third-party adapter
ships its ``models.json`` in its own package (the package of its adapter class), found through
the vendor registry. See ``docs/adding-a-vendor.md``.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

FILE = "models.json"
Status = Literal["active", "preview", "deprecated", "shut_down"]
#: Price fields a record keeps outside its ``prices`` (written once, for both catalogues).
LIFECYCLE_FIELDS = ("status", "shutdown", "aliases")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelRecord(_Strict):
    """Everything about one model."""

    name: str | None = None  # a human name, when the id is not one (a UUID)
    family: str | None = None  # capabilities: a key of the file's ``families`` (None: unknown)
    status: Status = "active"
    shutdown: date | None = None
    replacement: str | None = None
    lifecycle_source: str | None = None
    aliases: tuple[str, ...] = ()
    prices: dict[str, Any] | None = None  # a ``fallback_chain.cost.schema.ModelPrice``

    @field_validator("prices")
    @classmethod
    def _prices(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is None:
            return v
        misplaced = [k for k in LIFECYCLE_FIELDS if k in v]
        if misplaced:
            raise ValueError(f"{', '.join(misplaced)} belong to the record, not its prices")
        if "like" not in v:  # a "like" entry is checked once expanded, with its vendor's
            from fallback_chain.cost.schema import ModelPrice

            ModelPrice.model_validate(v)
        return v

    @model_validator(mode="after")
    def _lifecycle(self) -> ModelRecord:
        if self.family is not None and self.lifecycle_source is None:
            raise ValueError("a model with capabilities names the source of its lifecycle "
                             "(lifecycle_source)")
        if self.status == "deprecated" and self.shutdown is None:
            raise ValueError("a deprecated model names its shutdown date")
        if self.replacement is not None and self.status == "active":
            raise ValueError("an active model has no replacement")
        return self


class VendorRecords(_Strict):
    """One vendor's file."""

    vendor: str = Field(min_length=1)
    compiled: date
    default_family: str | None = None  # capabilities of an unknown model id
    families: dict[str, dict[str, Any]] = {}  # ``fallback_chain.provider.Capabilities`` fields
    prices: dict[str, Any]  # ``fallback_chain.cost.schema.VendorPrices`` without ``models``
    models: dict[str, ModelRecord]

    @model_validator(mode="after")
    def _consistent(self) -> VendorRecords:
        names = [f for f in (self.default_family,) if f] + [
            r.family for r in self.models.values() if r.family]
        unknown = sorted({f for f in names if f not in self.families})
        if unknown:
            raise ValueError(f"unknown families: {', '.join(unknown)}")
        for mid, record in self.models.items():
            if record.replacement is not None and record.replacement not in self.models:
                raise ValueError(f"{mid}: replacement {record.replacement!r} is not catalogued")
        return self

    def price_document(self) -> dict[str, Any]:
        """This vendor as the price catalogue's ``vendors`` entry (lifecycle included)."""
        models = {}
        for mid, record in self.models.items():
            if record.prices is None:
                continue
            entry = dict(record.prices)
            entry["status"] = record.status
            # always written: a "like" entry must not inherit another model's lifecycle
            entry["shutdown"] = record.shutdown.isoformat() if record.shutdown else None
            if record.aliases:
                entry["aliases"] = list(record.aliases)
            models[mid] = entry
        return {**self.prices, "models": models}


def _read(file: Traversable, where: str) -> VendorRecords:
    try:
        return VendorRecords.model_validate(json.loads(file.read_text("utf-8")))
    except ValueError as exc:
        raise ValueError(f"invalid model catalogue {where}: {exc}") from None


def _files() -> dict[str, tuple[Traversable, str]]:
    """``{vendor: (file, where)}``: every ``<vendor>/models.json`` under this package, plus the
    ``models.json`` beside each registered adapter of another package."""
    found: dict[str, tuple[Traversable, str]] = {}
    root = resources.files("fallback_chain.providers")
    for folder in sorted(root.iterdir(), key=lambda t: t.name):
        file = folder / FILE
        if folder.is_dir() and file.is_file():
            found[folder.name] = (file, f"providers/{folder.name}/{FILE}")
    from fallback_chain import registry

    for vendor in registry.names():
        if vendor in found:
            continue
        cls = registry.get(vendor)
        if not cls.catalogued:
            continue
        package = sys.modules[cls.__module__].__package__ or cls.__module__
        file = resources.files(package) / FILE
        if file.is_file():
            found[vendor] = (file, f"{package}/{FILE}")
    return found


@cache
def load() -> dict[str, VendorRecords]:
    """Every vendor's records, validated, by vendor id (read once per process)."""
    out: dict[str, VendorRecords] = {}
    for vendor, (file, where) in _files().items():
        records = _read(file, where)
        if records.vendor != vendor:
            raise ValueError(f"invalid model catalogue {where}: it says vendor "
                             f"{records.vendor!r}, its folder says {vendor!r}")
        out[vendor] = records
    return out


def price_document() -> dict[str, Any]:
    """The built-in price catalogue document (``fallback_chain.cost.schema.CatalogueData``)."""
    vendors = load()
    compiled = max((v.compiled for v in vendors.values()), default=date(2026, 11, 21))
    return {
        "schema_version": 1,
        "compiled": compiled.isoformat(),
        "currency": "USD",
        "source": "fallback-chain model catalogue (providers/<vendor>/models.json); every "
                  "vendor, model and credit rate names its public source and that source's "
                  "date; where sources disagree the newest wins (docs/cost.md)",
        "vendors": {name: v.price_document() for name, v in vendors.items()},
    }
