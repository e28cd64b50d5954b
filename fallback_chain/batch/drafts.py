"""Drafts, then finals: cheap drafts of every row first, finals only for the chosen ones.

``fallback-chain batch briefs.csv --out d --draft`` runs the batch with every row at
``quality="draft"`` (:func:`draft_row`) on the chain's cheapest expected order; a row without
a seed gets one derived from its prompt, so its final can reuse it. ``fallback-chain finalize
d --select IDS_FILE | --all --out finals`` reads the drafts' sidecars and runs the chosen ones
again at ``quality="final"`` (:func:`final_rows`), keeping prompt, seed and aspect, with the
draft's images as ``reference_images`` (sent to the providers whose model takes a reference
image, dropped with a note in the attempt for the others); each final sidecar's
``metadata.draft`` links it to its draft (id, sidecar, images, revised prompt).
The finals' input is written next to them (``finals/finalize-input.jsonl``), derived from the
drafts alone, so running the same ``finalize`` again resumes like any batch.
"""

from __future__ import annotations

import json
from math import gcd
from pathlib import Path
from typing import Any

from ..imaging import seed_for

DRAFT, FINAL = "draft", "final"
FINAL_INPUT = "finalize-input.jsonl"
#: Sidecar fields a final is asked with again (besides prompt, seed and size).
_KEPT = ("negative_prompt", "n", "background")


def _seed(values: dict[str, Any], from_csv: bool) -> Any:
    seed = values.get("seed")
    if seed is None or (isinstance(seed, str) and not seed.strip()):
        prompt = values.get("prompt")
        if isinstance(prompt, str) and prompt.strip():
            derived = seed_for(prompt.strip()) % 2**31
            return str(derived) if from_csv else derived
    return seed


def _at(quality: str, values: dict[str, Any], from_csv: bool) -> dict[str, Any]:
    out = {**values, "quality": quality}
    seed = _seed(values, from_csv)
    if seed is not None:
        out["seed"] = seed
    return out


def draft_row(values: dict[str, Any], from_csv: bool) -> dict[str, Any]:
    """A row at draft quality, with a seed (its own, or one derived from the prompt)."""
    return _at(DRAFT, values, from_csv)


def final_row(values: dict[str, Any], from_csv: bool) -> dict[str, Any]:
    """The same row at final quality (what ``--draft --dry-run`` prices as the final stage)."""
    return _at(FINAL, values, from_csv)


class DraftsError(ValueError):
    """The drafts folder or the selection cannot be used."""


def read_drafts(drafts: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    """The delivered drafts in ``drafts`` by id: (sidecar file name, sidecar)."""
    if not drafts.is_dir():
        raise DraftsError(f"{drafts} is not a folder of drafts")
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for path in sorted(drafts.glob("*.json")):
        try:
            sidecar = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(sidecar, dict) and "schema" in sidecar and sidecar.get("images") \
                and isinstance(sidecar.get("id"), str):
            found[sidecar["id"]] = (path.name, sidecar)
    if not found:
        raise DraftsError(f"no delivered drafts in {drafts} (run batch ... --draft first)")
    return found


def read_selection(path: Path) -> list[str]:
    """Ids, one per line (blank lines and ``#`` comments ignored)."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise DraftsError(f"cannot read the selection {path}: {exc}") from None
    return [s.strip() for s in lines if s.strip() and not s.strip().startswith("#")]


def _aspect(sidecar: dict[str, Any]) -> str:
    """The size to ask the final for: the draft's, or (for ``auto``) its delivered aspect."""
    asked = sidecar.get("size_requested") or "auto"
    if asked != "auto":
        return str(asked)
    delivered = str(sidecar.get("size_delivered") or "")
    w, _, h = delivered.partition("x")
    if not (w.isdigit() and h.isdigit()):
        return "auto"
    g = gcd(int(w), int(h))
    return f"{int(w) // g}:{int(h) // g}"


def _references(drafts: Path, files: list[Any]) -> list[str]:
    """The draft's image files, as absolute paths (a sidecar naming anything but a plain file
    of the drafts folder names no reference)."""
    folder = drafts.resolve()
    return [str(folder / f) for f in files
            if isinstance(f, str) and f and Path(f).name == f and f not in (".", "..")]


def final_rows(drafts: Path, select: list[str] | None) -> list[dict[str, Any]]:
    """The finals' input rows for the ``select``ed drafts (all when ``None``), in order."""
    found = read_drafts(drafts)
    ids = list(found) if select is None else select
    unknown = [i for i in ids if i not in found]
    if unknown:
        raise DraftsError(f"not delivered drafts in {drafts}: {', '.join(unknown[:10])}")
    rows = []
    for draft_id in dict.fromkeys(ids):
        name, sidecar = found[draft_id]
        metadata = {k: v for k, v in (sidecar.get("metadata") or {}).items() if k != "draft"}
        metadata["draft"] = {
            "id": draft_id, "folder": str(drafts), "sidecar": name,
            "images": [im["file"] for im in sidecar["images"]],
            "provider": sidecar.get("provider"), "model": sidecar.get("model"),
            "revised_prompt": sidecar.get("revised_prompt")}
        row: dict[str, Any] = {"id": draft_id, "prompt": sidecar["prompt"], "quality": FINAL,
                               "size": _aspect(sidecar), "seed": sidecar.get("seed")}
        row.update({k: sidecar[k] for k in _KEPT if sidecar.get(k) is not None})
        row["reference_images"] = _references(drafts, metadata["draft"]["images"])
        row["metadata"] = metadata
        rows.append(row)
    return rows


def write_final_input(drafts: Path, out: Path, select: list[str] | None) -> Path:
    """Write the finals' input into ``out`` (created) and return its path."""
    rows = final_rows(drafts, select)
    out.mkdir(parents=True, exist_ok=True)
    path = out / FINAL_INPUT
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path
