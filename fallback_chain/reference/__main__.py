"""``python -m fallback_chain.reference [--check] [--out DIR]``: write the reference pages
(default ``docs/reference`` of the checkout), or with ``--check`` list those that differ."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import render_all

CHECKOUT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = CHECKOUT / "docs" / "reference"
COMMAND = "scripts/gen-reference"


def stale(out: Path) -> list[str]:
    """The page files of ``out`` that differ from the code (missing, changed or extra)."""
    pages = render_all()
    found = {p.name for p in out.glob("*.md")} if out.is_dir() else set()
    wrong = [name for name, text in pages.items()
             if not (out / name).is_file() or (out / name).read_text(encoding="utf-8") != text]
    return sorted(wrong + [name for name in found - set(pages)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fallback_chain.reference",
                                     description=__doc__)
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 listing the pages that differ")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.out == DEFAULT_OUT and not (CHECKOUT / "pyproject.toml").is_file():
        parser.error("not in a checkout of fallback-chain: pass --out DIR")
    if args.check:
        wrong = stale(args.out)
        for name in wrong:
            print(f"{args.out / name}: differs from the code; run {COMMAND}", file=sys.stderr)
        return 1 if wrong else 0
    args.out.mkdir(parents=True, exist_ok=True)
    pages = render_all()
    for old in args.out.glob("*.md"):
        if old.name not in pages:
            old.unlink()
    for name, text in pages.items():
        (args.out / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(pages)} pages to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
