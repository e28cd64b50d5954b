"""One input row (a CSV record or a JSONL object) as a validated ``ImageRequest``.

Fields: ``prompt`` (required), ``id``, ``size``, ``quality``, ``n``, ``seed``,
``negative_prompt``, ``output_format``, ``background``, ``size_match``, ``exact_prompt`` and
``metadata`` (a JSON object; in CSV, a JSON string), and the tenant columns ``user`` and
``project`` (quotas; see docs/cost.md), and ``reference_images`` (image files a provider may
use as a reference, e.g. the draft of a final, as ``finalize`` writes them: a list of paths in
JSONL, one path in CSV; relative paths are read from the current folder; providers that take no
reference get the row without it). Any other column or key goes into
``metadata``. An ``error`` column (as written to a failures file) is ignored, so a failures file
can be fed back as it is. Empty CSV cells count as missing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import RequestValidationError
from ..request import ImageRequest

REQUEST_FIELDS = ("prompt", "size", "quality", "n", "seed", "negative_prompt", "output_format",
                  "background", "size_match", "exact_prompt")
#: The parameters that decide what is generated: two requests equal on these are identical.
GENERATION_FIELDS = REQUEST_FIELDS
#: Who asks: part of a row's key when set, so two tenants never share (or see) each other's
#: results, in a batch or through the cache.
TENANT_FIELDS = ("user", "project")
#: Input images a provider may use as a reference: part of a row's key by their SHA-256.
REFERENCE_FIELD = "reference_images"
IGNORED = frozenset({"error"})
UNSUPPORTED = {
    "images": "edits are not supported in batch input",
    "mask": "edits are not supported in batch input",
    "idempotency_key": "use the 'id' field",
}
MAX_ID_CHARS = 1000

Problems = list[tuple[str | None, str]]


@dataclass(frozen=True, slots=True)
class ParsedRow:
    id: str | None
    request: ImageRequest
    key: str
    content_id: str


def parse_row(values: Mapping[str, Any], *, from_csv: bool,
              tenant: Mapping[str, str | None] | None = None) -> ParsedRow | Problems:
    """Validate one row; returns the parsed row or ``(field, problem)`` pairs. ``tenant``
    gives the ``user`` and ``project`` of rows without those columns (``batch --user``)."""
    fields: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    problems: Problems = []
    item_id: str | None = None
    metadata: dict[str, Any] = {}
    for name, value in values.items():
        if from_csv and isinstance(value, str) and not value.strip():
            continue
        if value is None:
            continue
        if name in IGNORED:
            continue
        if name in UNSUPPORTED:
            problems.append((name, UNSUPPORTED[name]))
        elif name == "id":
            item_id, problem = _id(value)
            if problem:
                problems.append(("id", problem))
        elif name == "metadata":
            parsed, problem = _metadata(value, from_csv)
            if problem:
                problems.append(("metadata", problem))
            else:
                metadata = parsed
        elif name == "validators":
            names, problem = _validator_names(value)
            if problem:
                problems.append(("validators", problem))
            elif names:
                extra["validators"] = names
        elif name == REFERENCE_FIELD:
            paths, problem = _paths(value)
            if problem:
                problems.append((name, problem))
            elif paths:
                fields[name] = paths
        elif name in REQUEST_FIELDS or name in TENANT_FIELDS:
            fields[name] = value.strip() if from_csv and name != "prompt" else value
        else:
            extra[name] = value
    clash = sorted(set(extra) & set(metadata))
    if clash:
        problems.append(("metadata", f"key(s) {clash} given both as columns and in metadata"))
    if problems:
        return problems
    metadata = {**metadata, **extra}
    for name, value in (tenant or {}).items():
        if value is not None and name in TENANT_FIELDS:
            fields.setdefault(name, value)
    try:
        request = ImageRequest(**fields, metadata=metadata)
    except RequestValidationError as exc:
        return [(field or None, problem) for field, problem in exc.errors]
    generation = _canonical(_identity(request))
    key = _sha256(generation)
    content = generation + "\n" + _canonical(metadata) if metadata else generation
    return ParsedRow(item_id, request, key, "row-" + _sha256(content)[:16])


def request_key(request: ImageRequest) -> str:
    """SHA-256 of the generation parameters (what makes two requests identical)."""
    return _sha256(_canonical(_identity(request)))


def _identity(request: ImageRequest) -> dict[str, Any]:
    """The generation parameters, plus the tenant when the request has one (so rows without
    a tenant keep the keys they always had)."""
    out = {f: getattr(request, f) for f in GENERATION_FIELDS}
    for f in TENANT_FIELDS:
        if getattr(request, f) is not None:
            out[f] = getattr(request, f)
    if request.reference_images:
        out[REFERENCE_FIELD] = [hashlib.sha256(b).hexdigest() for b in request.reference_images]
    return out


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _id(value: Any) -> tuple[str | None, str | None]:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None, f"must be a string (got {type(value).__name__})"
    text = str(value).strip()
    if not text:
        return None, None
    if len(text) > MAX_ID_CHARS:
        return None, f"is {len(text):,} characters; at most {MAX_ID_CHARS:,}"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return None, "is not valid Unicode (a lone surrogate such as \\ud800)"
    return text, None


def _metadata(value: Any, from_csv: bool) -> tuple[dict[str, Any], str | None]:
    if from_csv and isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            return {}, f"is not valid JSON ({exc.msg} at character {exc.pos + 1})"
        except RecursionError:
            return {}, "is nested too deeply to read"
        except ValueError as exc:  # e.g. an integer of more digits than Python converts
            return {}, f"is not valid JSON ({exc})"
    if not isinstance(value, dict):
        return {}, f"must be a JSON object (got {type(value).__name__})"
    return value, None


def _paths(value: Any) -> tuple[list[str], str | None]:
    """A row's ``reference_images``: one path (a string) or a list of paths."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        return [], "expected a file path or a list of file paths"
    return [v.strip() for v in items if v.strip()], None


def _validator_names(value: Any) -> tuple[list[str], str | None]:
    """A row's ``validators``: built-in names, comma-separated (CSV) or a list (JSONL)."""
    from ..validators import BUILTIN

    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        return [], "expected validator names, e.g. \"not_blank,size\""
    names = [v.strip() for v in items if v.strip()]
    unknown = [n for n in names if n not in BUILTIN]
    if unknown:
        return [], f"unknown validator(s) {unknown}; built-ins: {', '.join(sorted(BUILTIN))}"
    return names, None
