"""``fallback-chain compare``: the same prompt N times on each provider, side by side.

Only typer is imported at module level; asyncio, the library, Pillow, Rich and the vendor SDKs
load inside the command, so ``--help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fallback_chain.richtable import print_table

if TYPE_CHECKING:
    from fallback_chain.compare.model import Cell, Comparison
    from fallback_chain.compare.output import Outputs
    from fallback_chain.compare.selection import Selection
    from fallback_chain.config import Emulated
    from fallback_chain.request import ImageRequest

#: The emulator's key in ``--emulated`` runs (no real key is read or needed).
EMULATED_KEY = "compare-emulated-key"
#: ``--emulated`` without ``--faults``: no errors, and each vendor at its own pace (Gemini
#: quick, OpenAI slower, Leonardo's jobs polled), so the latency columns differ by provider.
EMULATED_FAULTS: dict[str, Any] = {
    "default": {"latency": {"dist": "uniform", "min_ms": 40, "max_ms": 250}},
    "gemini": {"latency": {"dist": "uniform", "min_ms": 40, "max_ms": 160}},
    "openai": {"latency": {"dist": "uniform", "min_ms": 250, "max_ms": 600}},
    "leonardo": {"job_delay_s": 0.3},
}
DEFAULT_OUT = "compare-out"


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def compare(
    prompt: Annotated[str, typer.Argument(help="The prompt every provider gets, every run.")],
    providers: Annotated[str | None, typer.Option(
        "--providers", "-p",
        help="Comma-separated: vendor or vendor:model (gemini, leonardo, openai; keys from "
             "the environment), or names of providers of a chain in the config file. "
             "Default: every provider of the config's chain; with --emulated and no config "
             "file, gemini,leonardo,openai.")] = None,
    runs: Annotated[int, typer.Option("--runs", "-r", min=1, max=100,
                                      help="Runs per provider.")] = 3,
    size: Annotated[str, typer.Option(
        help="WxH in pixels, an aspect ratio such as 16:9, or auto.")] = "auto",
    quality: Annotated[str, typer.Option(help="draft, standard or final.")] = "standard",
    out: Annotated[Path | None, typer.Option(
        help=f"Folder for the contact sheet, images and comparison.json (default: a new "
             f"timestamped folder under ./{DEFAULT_OUT}).", file_okay=False)] = None,
    config: Annotated[Path | None, typer.Option(
        help="Config file (default: $FALLBACK_CHAIN_CONFIG, else ./fallback-chain.toml); read "
             "when --providers names its providers or is omitted.", dir_okay=False)] = None,
    chain: Annotated[str | None, typer.Option(
        help="The config file's chain to take providers and policy from (default: its "
             "default chain).")] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=64,
                                             help="Runs in flight at once.")] = 4,
    thumb_px: Annotated[int, typer.Option(min=48, max=1024,
                                          help="Thumbnail size on the sheet.")] = 256,
    emulated: Annotated[bool, typer.Option(
        "--emulated", help="Run against the built-in emulator: every provider, vendor spec or "
        "configured, is pointed at it with its key (no API key is read, no real vendor is "
        "called).")] = False,
    faults: Annotated[Path | None, typer.Option(
        help="With --emulated: a fault file for the emulator (see docs/emulator.md).",
        exists=True, dir_okay=False, readable=True)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
    = False,
) -> None:
    """Run PROMPT --runs times on each provider; draw a contact sheet and a table of revised
    prompts, costs and latencies.

    Exit status: 0 when at least one image was delivered, 1 when none was, 2 for bad input.
    """
    from fallback_chain.compare.output import run_folder, write_outputs
    from fallback_chain.errors import ConfigurationError, RequestValidationError
    from fallback_chain.request import ImageRequest

    if faults is not None and not emulated:
        raise _fail("--faults only applies with --emulated")
    try:
        request = ImageRequest(prompt=prompt, size=size, quality=quality)
    except RequestValidationError as exc:
        raise _fail(str(exc)) from None
    job = _Job(providers, config, chain, request, runs, concurrency, as_json)
    try:
        comparison = _run_emulated(job, faults) if emulated else _run(job, _select(job, None))
        folder = out if out is not None else run_folder(DEFAULT_OUT, comparison.started_at)
        outputs = write_outputs(comparison, folder, thumb_px=thumb_px)
    except (ConfigurationError, OSError) as exc:
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        typer.echo("interrupted; the comparison was not saved", err=True)
        raise typer.Exit(130) from None
    if as_json:
        _print_json(comparison, outputs, emulated)
    else:
        _print_tables(comparison, outputs, emulated)
    raise typer.Exit(0 if any(c.delivered for c in comparison.cells) else 1)


@dataclass(frozen=True, slots=True)
class _Job:
    providers: str | None
    config: Path | None
    chain: str | None
    request: ImageRequest
    runs: int
    concurrency: int
    quiet: bool


def _select(job: _Job, emulated: Emulated | None) -> Selection:
    from fallback_chain.compare.selection import select_providers
    from fallback_chain.policy import Policy

    return select_providers(job.providers, config=job.config, chain=job.chain,
                            emulated=emulated,
                            emulated_policy=Policy(attempt_timeout_s=30, backoff_initial_s=0.05))


def _run_emulated(job: _Job, faults: Path | None) -> Comparison:
    from fallback_chain.config import Emulated
    from fallback_chain.emulator import Emulator, serve_in_thread

    # a new placeholder per call and vendor: the contact sheet, the spreads and the
    # between-provider table show differences, as they would with the real services
    emulator = Emulator(faults=faults if faults is not None else EMULATED_FAULTS,
                        api_keys=EMULATED_KEY, vary_images=True)
    with serve_in_thread(emulator) as base_url:
        if not job.quiet:
            typer.echo(f"emulated vendor APIs on {base_url} (no real vendor is called)",
                       err=True)
        return _run(job, _select(job, Emulated(base_url, EMULATED_KEY)))


def _run(job: _Job, selection: Selection) -> Comparison:
    import asyncio

    try:
        if not job.quiet:
            typer.echo(_estimate_line(selection, job), err=True)
            if selection.ledger is not None:
                typer.echo(f"attempts go to the ledger {selection.ledger.path}", err=True)
        return asyncio.run(_compare(job, selection))
    finally:
        selection.close()


def _estimate_line(selection: Selection, job: _Job) -> str:
    known, unpriced = 0.0, []
    for label, p in zip(selection.labels, selection.providers, strict=True):
        each = p.estimate_cost(job.request)
        if each is None:
            unpriced.append(label)
        else:
            known += each * job.runs
    line = (f"{job.runs} run(s) on each of {len(selection.providers)} provider(s); "
            f"expected cost about ${known:.4f}")
    return line + (f" (no price for {', '.join(unpriced)})" if unpriced else "")


async def _compare(job: _Job, selection: Selection) -> Comparison:
    import asyncio

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from fallback_chain.compare.run import compare as run_compare

    providers = selection.providers
    progress = Progress(TextColumn("comparing"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[failed]} failed  ${task.fields[spent]:.4f}"),
                        console=Console(stderr=True), transient=True, disable=job.quiet)
    task = progress.add_task("compare", total=job.runs * len(providers), spent=0.0, failed=0)
    spent, failed = [0.0], [0]

    def advance(cell: Cell) -> None:
        spent[0] += cell.cost_usd
        failed[0] += 0 if cell.delivered else 1
        progress.update(task, advance=1, spent=spent[0], failed=failed[0])

    try:
        with progress:
            return await run_compare(providers, job.request, job.runs,
                                     concurrency=job.concurrency, policy=selection.policy,
                                     labels=selection.labels, on_cell=advance,
                                     on_event=selection.ledger)
    finally:
        await asyncio.gather(*(p.aclose() for p in providers), return_exceptions=True)


# ------------------------------------------------------------------------------- output

def _print_json(comparison: Comparison, outputs: Outputs, emulated: bool) -> None:
    doc = comparison.to_dict({k: [str(p) for p in v] for k, v in outputs.files.items()})
    doc.update(contact_sheet=str(outputs.sheet), json=str(outputs.json),
               out=str(outputs.folder), emulated=emulated)
    sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


def _print_tables(comparison: Comparison, outputs: Outputs, emulated: bool) -> None:
    from rich.console import Console
    from rich.markup import escape

    from fallback_chain.compare.tables import cross_table, runs_table, summary_table, usd

    console = Console()
    print_table(console, runs_table(comparison))
    print_table(console, summary_table(comparison))
    cross = cross_table(comparison)
    if cross is not None:
        print_table(console, cross)
    delivered = sum(1 for c in comparison.cells if c.delivered)
    console.print(f"{delivered} of {len(comparison.cells)} runs delivered; spent "
                  f"{usd(comparison.cost_usd)} in {comparison.elapsed_s:.1f} s"
                  + (" (emulated)" if emulated else ""))
    console.print(f"contact sheet: [bold]{escape(str(outputs.sheet))}[/bold]", soft_wrap=True)
    console.print(f"images and comparison.json: {escape(str(outputs.folder))}",
                  soft_wrap=True)
