"""``fallback-chain demo``: the main job for newcomers, on emulated providers (no keys, nothing
billed). See :mod:`fallback_chain.demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._output import JsonOption


def demo(
    out: Annotated[Path, typer.Option(
        file_okay=False, help="Folder for the images and their sidecars.")] = Path("demo-out"),
    count: Annotated[int, typer.Option(min=1, help="Number of briefs to generate.")] = 8,
    seed: Annotated[int, typer.Option(help="Seed of the emulated faults.")] = 7,
    as_json: JsonOption = False,
) -> None:
    """Run the demo: real adapters against built-in emulated Gemini, Leonardo and OpenAI APIs
    that misbehave like the real ones (rate limits, failed jobs, a refusal). No API key is
    needed and no real vendor is ever called."""
    from fallback_chain.demo import run

    raise typer.Exit(run(out, count, seed, as_json=as_json))
