"""``fallback-chain finalize DRAFTS --select IDS_FILE | --all --out FINALS``: finals of chosen
drafts (made by ``fallback-chain batch ... --draft``), at final quality, resumably.

Only typer is imported at module level; everything else loads inside the command.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from .batch import (
    EXIT_CODES,
    ProgressMode,
    _chain_source,
    _dry_run,
    _fail,
    _run,
)


def finalize(
    drafts: Annotated[str, typer.Argument(
        help="The drafts folder (the --out of `fallback-chain batch ... --draft`).")],
    out: Annotated[str, typer.Option("--out", "-o", help="Folder for the finals.")],
    select: Annotated[str | None, typer.Option(
        "--select", help="File of draft ids to finalize, one per line.")] = None,
    all_drafts: Annotated[bool, typer.Option("--all", help="Finalize every draft.")] = False,
    config: Annotated[str | None, typer.Option(
        "--config", "-c", help="Config file (default: $FALLBACK_CHAIN_CONFIG, else "
                               "./fallback-chain.toml).")] = None,
    chain: Annotated[str | None, typer.Option(
        "--chain", help="Chain of the config file to use (default: its default_chain).")]
    = None,
    concurrency: Annotated[int | None, typer.Option(
        "--concurrency", "-j", min=1, max=1024, help="Items in flight at once.")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Price the finals; call no provider, write nothing.")] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the summary as one JSON document on stdout.")] = False,
    emulated: Annotated[bool, typer.Option(
        "--emulated", help="Run on built-in emulated providers (no API key).")] = False,
    progress: Annotated[ProgressMode, typer.Option(
        help="Progress display: auto, rich, plain, none.")] = ProgressMode.auto,
    emulator: Annotated[str | None, typer.Option(
        hidden=True, help="Use the emulator already serving at this URL.")] = None,
    emulator_key: Annotated[str, typer.Option(hidden=True)] = "test-key",
    fsync: Annotated[bool, typer.Option("--fsync/--no-fsync", hidden=True)] = True,
) -> None:
    """Make finals of the chosen drafts in DRAFTS into OUT, at final quality.

    Each final keeps its draft's prompt, seed and aspect; its sidecar's metadata.draft names
    the draft (id, sidecar, images, provider, revised prompt). Running the same command again
    resumes: finals already delivered are not paid for again.
    """
    from fallback_chain.batch.drafts import DraftsError, read_selection, write_final_input
    from fallback_chain.batch.reader import InputError
    from fallback_chain.batch.storage import StorageError
    from fallback_chain.errors import ConfigurationError

    if (select is None) == (not all_drafts):
        raise _fail("pass --select IDS_FILE or --all (one of them)", as_json)
    try:
        chosen = read_selection(Path(select)) if select is not None else None
        with (tempfile.TemporaryDirectory() as scratch,
              _chain_source(config, chain, emulated, emulator, emulator_key, as_json,
                            need_chain=not dry_run) as source):
            # a dry run writes nothing into OUT: its input goes to a scratch folder
            where = Path(scratch) if dry_run else Path(out)
            source_file = str(write_final_input(Path(drafts), where, chosen))
            if dry_run:
                code = _dry_run(source, source_file, out, None, {}, {}, as_json)
            else:
                code = _run(source, source_file, out, concurrency, None, None, None, True,
                            3.0, {}, fsync, progress, as_json)
    except (DraftsError, InputError, StorageError, ConfigurationError,
            FileNotFoundError) as exc:
        raise _fail(str(exc), as_json) from None
    raise typer.Exit(code)


finalize.__doc__ = (finalize.__doc__ or "") + f"\n    Exit codes: {EXIT_CODES}\n"
