"""``fallback-chain demo``: briefs one request after another on emulated providers (no keys,
nothing billed), every attempt printed. See :mod:`fallback_chain.demo`. (``scripts/demo`` is
the batch demo: ``fallback-chain batch examples/briefs.csv --emulated``.)"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._output import JsonOption

#: The same as ``fallback_chain.demo.DEFAULT_OUT`` (not imported: ``--help`` stays fast).
DEFAULT_OUT = Path("demo-requests-out")


def demo(
    out: Annotated[Path, typer.Option(
        file_okay=False, help="Folder for the images and their sidecars (not scripts/demo's "
        "demo-out/).")] = DEFAULT_OUT,
    count: Annotated[int, typer.Option(min=1, help="Number of briefs to generate.")] = 8,
    seed: Annotated[int, typer.Option(help="Seed of the emulated faults.")] = 7,
    as_json: JsonOption = False,
) -> None:
    """Run the request-by-request demo: COUNT briefs (8 by default), one request after
    another, through real adapters against built-in emulated Gemini, Leonardo and OpenAI APIs
    that misbehave like the real ones (rate limits, failed jobs, a refusal), printing every
    attempt. No API key is needed and no real vendor is ever called. Exit code 0 when at least
    one brief was delivered (the refused brief is a reported result), 1 otherwise."""
    from fallback_chain.demo import run

    raise typer.Exit(run(out, count, seed, as_json=as_json))
