"""``--record DIR`` for ``generate`` and ``batch``: write every vendor exchange to a cassette
folder (``fallback_chain.cassette``; docs/testing.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from fallback_chain.chain import Chain

RecordOption = Annotated[Path | None, typer.Option(
    "--record", file_okay=False,
    help="Record every vendor exchange into this folder, one scrubbed JSON file each (no keys, "
         "no images, no prompts); replay them with `fallback-chain emulate --replay DIR`.")]


def attach_recorder(chain: Chain | None, folder: Path | None) -> None:
    """Record ``chain``'s exchanges into ``folder`` (nothing when either is None)."""
    if chain is None or folder is None:
        return
    from fallback_chain.cassette import Recorder

    Recorder(folder).attach(chain)
