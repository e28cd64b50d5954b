"""Write a comparison to a folder: every image, the contact sheet and ``comparison.json``."""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .model import Comparison

SHEET_NAME = "contact-sheet.png"
JSON_NAME = "comparison.json"
IMAGES_DIR = "images"

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(slots=True)
class Outputs:
    folder: Path
    sheet: Path
    json: Path
    files: dict[tuple[int, int], list[Path]] = field(default_factory=dict)


def safe_name(text: str) -> str:
    """``text`` as one safe file-name part: letters, digits, ``._-``; never empty, never
    starting with a dot (so ``../x`` cannot climb out of the folder)."""
    name = _UNSAFE.sub("_", text).strip("._") or "provider"
    return name[:80]


def run_folder(base: str | os.PathLike[str], started: datetime) -> Path:
    """A new folder under ``base`` named after the start time (``20260101-120000``), with a
    suffix if that exists already, so a second comparison never overwrites the first."""
    root = Path(base)
    stem = started.strftime("%Y%m%d-%H%M%S")
    candidate, k = root / stem, 1
    while candidate.exists():
        k += 1
        candidate = root / f"{stem}-{k}"
    return candidate


def write_outputs(comparison: Comparison, folder: str | os.PathLike[str], *,
                  thumb_px: int = 256) -> Outputs:
    """Save each delivered image as ``images/<provider>-run<k>[-<i>].<ext>``, draw the
    contact sheet (``contact-sheet.png``) and write ``comparison.json`` (the figures, every
    cell and attempt, and the image file names relative to ``folder``)."""
    from .sheet import render_contact_sheet

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    files: dict[tuple[int, int], list[Path]] = {}
    names = _row_names([r.label for r in comparison.rows])
    for cell in comparison.cells:
        if cell.result is None:
            continue
        images = cell.result.images
        for i, image in enumerate(images, start=1):
            suffix = f"-{i}" if len(images) > 1 else ""
            path = image.save(root / IMAGES_DIR / f"{names[cell.row]}-run{cell.run}{suffix}"
                              f"{image.extension}")
            files.setdefault((cell.row, cell.run), []).append(path)
    sheet = render_contact_sheet(comparison, root / SHEET_NAME, thumb_px=thumb_px)
    relative = {k: [p.relative_to(root).as_posix() for p in v] for k, v in files.items()}
    doc = comparison.to_dict(relative)
    doc["contact_sheet"] = SHEET_NAME
    target = _write_json(root / JSON_NAME, doc)
    return Outputs(root, sheet, target, files)


def _row_names(labels: list[str]) -> list[str]:
    """Safe, distinct file-name stems for the rows."""
    out: list[str] = []
    for label in labels:
        name = safe_name(label)
        while name in out:
            name += "_"
        out.append(name)
    return out


def _write_json(target: Path, doc: object) -> Path:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=2, ensure_ascii=False)
            fh.write("\n")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
