"""``PriceCatalogue``: the price data shipped with the package, loaded on first use, validated,
cached, and overridable without a release.

Where prices come from, last wins:

1. the built-in records, ``providers/<vendor>/models.json`` (one record per model, shared with
   the capability catalogue; every entry names its source and date; see
   :mod:`fallback_chain.records`);
2. files named by the ``FALLBACK_CHAIN_PRICES`` environment variable (one path, or several
   separated by ``os.pathsep``), merged over it. The default catalogue notices when such a file
   changes (its modification time) and reloads it; a file that disappears or becomes invalid
   after a good load keeps the last good prices and logs a warning;
3. ``PriceCatalogue.load(path)``, for an explicit file;
4. ``catalogue.with_overrides({...})``, for one provider instance (negotiated prices).

Overrides use JSON Merge Patch (RFC 7386) on the catalogue document: objects merge, ``null``
deletes, anything else replaces. A model entry with ``"like": "<other model>"`` copies the
other model's prices (aliases excepted) and replaces what it sets itself.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Hashable, Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from .schema import TIERS, CatalogueData, ModelPrice, Tier, VendorPrices
from .sizes import Size, SizeLike, clamp_class, class_for, parse_size

log = logging.getLogger("fallback_chain")

ENV_VAR = "FALLBACK_CHAIN_PRICES"
#: Lookups one catalogue remembers (``memoised``) before it starts afresh.
MEMO_SIZE = 4096
_MISSING: Any = object()
T = TypeVar("T")
_DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")


class PriceCatalogueError(ValueError):
    """The price data (built-in, a file, or an override) is not a valid catalogue."""


class PriceCatalogue:
    """Validated price data with lookups. Immutable: overrides return a new catalogue.

    Vendor and model names are matched case-insensitively, through aliases (``google`` is
    ``gemini``; ``gpt-image-2-2026-04-21`` is ``gpt-image-2``), with a ``models/`` or
    ``<vendor>/`` prefix and a trailing ``-YYYY-MM-DD`` snapshot date ignored.
    """

    __slots__ = ("_memo", "_models", "_raw", "_vendors", "data", "origins")

    def __init__(self, document: Mapping[str, Any], *, origins: tuple[str, ...] = ("built-in",)
                 ) -> None:
        self._raw: dict[str, Any] = copy.deepcopy(dict(document))
        try:
            self.data = CatalogueData.model_validate(_resolve_like(self._raw))
        except (ValidationError, ValueError, TypeError) as exc:
            raise PriceCatalogueError(
                f"invalid price catalogue ({' + '.join(origins)}): {exc}") from None
        self.origins = origins
        self._memo: dict[Hashable, Any] = {}
        self._vendors: dict[str, str] = {}
        self._models: dict[str, dict[str, str]] = {}
        for key, vendor in self.data.vendors.items():
            for name in (key, *vendor.aliases):
                self._vendors[name.lower()] = key
            names: dict[str, str] = {}
            for mkey, model in vendor.models.items():
                for name in model.aliases:
                    names.setdefault(name.lower(), mkey)
            for mkey in vendor.models:  # a model's own name beats another model's alias
                names[mkey.lower()] = mkey
            self._models[key] = names

    # ------------------------------------------------------------------------- loading

    @classmethod
    def builtin(cls) -> PriceCatalogue:
        """The data shipped with this version (read and validated once per process)."""
        with _lock:
            cat = _cache.get("builtin")
            if cat is None:
                from ..records import price_document

                cat = _cache["builtin"] = cls(price_document())
            return cat

    @classmethod
    def default(cls) -> PriceCatalogue:
        """The built-in data with the files in ``$FALLBACK_CHAIN_PRICES`` merged over it.

        Cached; a changed environment variable or file modification time causes a reload.
        Cheap enough to call per request (one environment read, and one ``stat`` per file named
        by the variable), so a changed file is picked up by the next request without a restart.
        """
        spec = os.environ.get(ENV_VAR, "")
        hit = _cache.get("default")
        if hit is not None and hit[0][0] == spec and (
                not hit[0][1] or hit[0][1] == tuple(_mtime(p) for p in _paths(spec))):
            return hit[1]  # type: ignore[no-any-return]
        paths = _paths(spec)
        key = (spec, tuple(_mtime(p) for p in paths))
        base = cls.builtin()
        try:
            cat = base
            for path in paths:
                cat = cat._merge_file(path)
        except (OSError, PriceCatalogueError) as exc:
            if hit is None or hit[0][0] != spec:
                raise PriceCatalogueError(f"{ENV_VAR}: {exc}") from None
            log.warning("%s: keeping the last good prices: %s", ENV_VAR, exc)
            cat = hit[1]
        with _lock:
            _cache["default"] = (key, cat)
        return cat

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, merge: bool = True) -> PriceCatalogue:
        """Prices from the JSON file at ``path``: merged over the built-in data (``merge=True``),
        or on its own (a complete catalogue document)."""
        if merge:
            return cls.builtin()._merge_file(path)
        return cls(_read_json(path), origins=(f"file {os.fspath(path)}",))

    @classmethod
    def clear_cache(cls) -> None:
        """Forget loaded data (tests; a long-running process that wants a fresh read)."""
        with _lock:
            _cache.clear()

    def with_overrides(self, patch: Mapping[str, Any], *, source: str = "override",
                       as_of: date | None = None) -> PriceCatalogue:
        """A new catalogue with ``patch`` (a partial catalogue document) merged over this one.

        ``patch`` may name its own ``source`` and ``as_of`` at the top level; the vendors and
        models it changes record them in their ``override`` field. New models must name their
        own ``source`` and ``as_of``. Example (a negotiated 20 % discount and a flat price)::

            cat.with_overrides({"source": "contract 2026-11", "vendors": {
                "openai": {"price_factor": 0.8},
                "gemini": {"models": {"gemini-2.5-flash-image": {"flat_usd_per_image": 0.03}}}}})
        """
        patch = dict(patch)
        label = str(patch.pop("source", source))
        when = patch.pop("as_of", None) or (as_of.isoformat() if as_of else None)
        stamped = _stamp(patch, self._raw, {"source": label, "as_of": when})
        return PriceCatalogue(_merge_patch(self._raw, stamped), origins=(*self.origins, label))

    def _merge_file(self, path: str | os.PathLike[str]) -> PriceCatalogue:
        doc = _read_json(path)
        if not isinstance(doc, dict):
            raise PriceCatalogueError(f"{os.fspath(path)}: expected a JSON object")
        doc.setdefault("source", f"file {os.fspath(path)}")
        return self.with_overrides(doc)

    def to_dict(self) -> dict[str, Any]:
        """The catalogue document (with overrides merged, ``like`` unresolved)."""
        return copy.deepcopy(self._raw)

    # ------------------------------------------------------------------------- lookups

    def memoised(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``, remembered under ``key`` for the life of this (immutable) catalogue.
        Keeps per-attempt lookups such as ``estimate`` to a dict hit. Bounded: past
        ``MEMO_SIZE`` keys (arbitrary model names, sizes) the memo starts afresh."""
        value: T = self._memo.get(key, _MISSING)
        if value is _MISSING:
            value = compute()
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = value
        return value

    def vendor_key(self, vendor: str) -> str | None:
        """The catalogue's name for ``vendor`` (through aliases), or ``None``."""
        return self._vendors.get(vendor.strip().lower())

    def vendor(self, vendor: str) -> VendorPrices | None:
        key = self.vendor_key(vendor)
        return None if key is None else self.data.vendors[key]

    def model_key(self, vendor: str, model: str | None = None) -> str | None:
        """The catalogue's name for ``model`` (``None``: the vendor's default model)."""
        vkey = self.vendor_key(vendor)
        if vkey is None:
            return None
        if model is None:
            return self.data.vendors[vkey].default_model
        names = self._models[vkey]
        name = model.strip().lower()
        for prefix in ("models/", f"{vkey}/", f"{vendor.strip().lower()}/"):
            name = name.removeprefix(prefix)
        if name in names:
            return names[name]
        undated = _DATE_SUFFIX.sub("", name)
        return names.get(undated)

    def model(self, vendor: str, model: str | None = None) -> ModelPrice | None:
        """Prices of ``model`` (``None``: the vendor's default model), or ``None`` if unknown."""
        return self.memoised(("model", vendor, model), lambda: self._model(vendor, model))

    def _model(self, vendor: str, model: str | None) -> ModelPrice | None:
        key = self.model_key(vendor, model)
        if key is None:
            return None
        return self.data.vendors[self._vendors[vendor.strip().lower()]].models[key]

    def vendors(self) -> list[str]:
        return list(self.data.vendors)

    def models(self, vendor: str) -> list[str]:
        v = self.vendor(vendor)
        return [] if v is None else list(v.models)

    def entries(self) -> Iterator[tuple[str, str, ModelPrice]]:
        """Every ``(vendor, model, prices)``."""
        for vkey, vendor in self.data.vendors.items():
            for mkey, model in vendor.models.items():
                yield vkey, mkey, model

    def quality_tiers(self, vendor: str, model: str | None = None) -> dict[Tier, str]:
        """How our tiers (``draft``/``standard``/``final``) map to this model's quality setting
        (OpenAI GPT Image ``low/medium/high``, DALL-E 3 ``standard/hd``, Gemini the image size
        class ``512/1K/2K/4K``, Leonardo's GPT Image ``fast/quality/ultra``)."""
        return dict(self._tiers(vendor, model))

    def _tiers(self, vendor: str, model: str | None) -> Mapping[Tier, str]:
        """``quality_tiers`` without the copy (callers must not modify it)."""
        def compute() -> Mapping[Tier, str]:
            v = self.vendor(vendor)
            if v is None:
                return {}
            m = self.model(vendor, model)
            return m.quality_tiers if m is not None and m.quality_tiers else v.quality_tiers

        return self.memoised(("tiers", vendor, model), compute)

    def vendor_quality(self, vendor: str, model: str | None = None, quality: str | None = None,
                       size: SizeLike = None) -> str | None:
        """The vendor's quality setting for ``quality`` (a tier, or already a vendor setting;
        ``None`` means ``standard``), as the adapters should send it and as ``estimate`` prices it.

        For vendors whose quality is a resolution class (Gemini), a tier is raised to the class
        the requested ``size`` needs (``2048x2048`` at ``standard`` is ``2K``) and kept to the
        classes this model offers. An explicit class (``"4K"``) is taken as given.
        """
        return self.memoised(("vendor_quality", vendor, model, quality, size),
                             lambda: self._vendor_quality(vendor, model, quality, size))

    def _vendor_quality(self, vendor: str, model: str | None, quality: str | None,
                        size: SizeLike) -> str | None:
        v = self.vendor(vendor)
        if v is None:
            return quality
        tiers = self._tiers(vendor, model)
        q = quality or "standard"
        if q not in TIERS:
            return q
        key = tiers[q]
        classes = v.size_classes
        if classes and key in classes:
            px: Size | None = parse_size(size)
            if px is not None:
                wanted = class_for(px, classes)
                if classes[wanted] > classes[key]:
                    key = wanted
            m = self.model(vendor, model)
            if m is not None:
                offered = {k for row in m.per_image.values() for k in row}
                offered |= {k for row in m.output_tokens.values() for k in row}
                key = clamp_class(key, offered, classes)
        return key

    def usd_per_credit(self, vendor: str = "leonardo") -> float | None:
        v = self.vendor(vendor)
        return None if v is None or v.credit is None else v.credit.usd

    def unit(self, vendor: str, model: str | None = None) -> str | None:
        def compute() -> str | None:
            v = self.vendor(vendor)
            if v is None:
                return None
            m = self.model(vendor, model)
            return (m.unit if m is not None and m.unit else None) or v.unit

        return self.memoised(("unit", vendor, model), compute)

    def price_factor(self, vendor: str, model: str | None = None) -> float:
        """Negotiated multiplier (vendor x model), 1.0 unless overridden."""
        def compute() -> float:
            v = self.vendor(vendor)
            m = self.model(vendor, model)
            return (v.price_factor if v else 1.0) * (m.price_factor if m else 1.0)

        return self.memoised(("price_factor", vendor, model), compute)

    def __repr__(self) -> str:
        n = sum(len(v.models) for v in self.data.vendors.values())
        return (f"PriceCatalogue({len(self.data.vendors)} vendors, {n} models, "
                f"compiled {self.data.compiled}, from {' + '.join(self.origins)})")


# ----------------------------------------------------------------------------- helpers

_lock = threading.RLock()
_cache: dict[str, Any] = {}


def _paths(spec: str) -> list[str]:
    """The files ``$FALLBACK_CHAIN_PRICES`` names (``os.pathsep``-separated, blanks ignored)."""
    return [p for p in spec.split(os.pathsep) if p.strip()]


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def _read_json(path: str | os.PathLike[str]) -> Any:
    try:
        return json.loads(Path(path).read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise PriceCatalogueError(f"{os.fspath(path)} is not valid JSON: {exc}") from None


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON Merge Patch; never modifies its arguments."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch(out.get(key), value)
    return out


def _stamp(patch: dict[str, Any], base: Mapping[str, Any], stamp: dict[str, Any]
           ) -> dict[str, Any]:
    """Add ``override`` provenance to each existing vendor, model and credit rate ``patch``
    changes (unless the patch names its own ``source`` or ``override`` there)."""
    stamp = {k: v for k, v in stamp.items() if v is not None}
    patch = copy.deepcopy(patch)
    vendors = patch.get("vendors")
    if not isinstance(vendors, dict):
        return patch
    base_vendors = base.get("vendors", {})
    for vkey, vpatch in vendors.items():
        old = base_vendors.get(vkey)
        if not isinstance(vpatch, dict) or not isinstance(old, dict):
            continue
        if set(vpatch) - {"models", "credit"} and not {"source", "override"} & set(vpatch):
            vpatch["override"] = stamp
        credit = vpatch.get("credit")
        if isinstance(credit, dict) and old.get("credit") and not {"source", "override"} & set(
                credit):
            credit["override"] = stamp
        for mkey, mpatch in (vpatch.get("models") or {}).items():
            if (isinstance(mpatch, dict) and mkey in old.get("models", {})
                    and not {"source", "override"} & set(mpatch)):
                mpatch["override"] = stamp
    return patch


def _resolve_like(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Expand ``"like": "<model>"`` entries (same vendor; chains allowed, cycles rejected)."""
    out: dict[str, Any] = copy.deepcopy(dict(doc))
    for vkey, vendor in (out.get("vendors") or {}).items():
        models = vendor.get("models") if isinstance(vendor, dict) else None
        if not isinstance(models, dict):
            continue

        def expand(name: str, seen: tuple[str, ...], models: dict[str, Any] = models,
                   vkey: str = vkey) -> Any:
            entry = models[name]
            if not isinstance(entry, dict) or "like" not in entry:
                return entry
            target = entry["like"]
            if target in seen or target not in models:
                why = "a cycle" if target in seen else "an unknown model"
                raise ValueError(f"{vkey}/{name}: 'like' names {why} ({target!r})")
            base = {k: v for k, v in expand(target, (*seen, target)).items() if k != "aliases"}
            return {**base, **{k: v for k, v in entry.items() if k != "like"}}

        for name in list(models):
            models[name] = expand(name, (name,))
    return out
