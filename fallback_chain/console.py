"""The ``fallback-chain`` console script: the command line, or one line naming the extra that
brings it when the core install lacks it."""

from __future__ import annotations

import sys

from .extras import MissingExtraError


def main() -> None:
    try:
        from .cli import main as cli_main
    except MissingExtraError as exc:
        sys.stderr.write(f"fallback-chain: {exc}\n")
        raise SystemExit(2) from None
    cli_main()
