"""``fallback-chain batch INPUT --out DIR_OR_URL``: generate every row of a CSV or JSONL file.

The chain comes from the config file (``--config``/``--chain``), or, with ``--emulated``, runs
on the built-in emulated providers (the configured chain pointed at them if a config file is
found, else the demo chain); ``--emulator URL`` uses an emulator already running
(``fallback-chain emulate``). Exit codes: see :data:`EXIT_CODES`.

Only typer is imported at module level; everything else loads inside the command.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Iterator
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._metrics import MetricsPortOption, serve_metrics
from ._prescreen import HELP as PRESCREEN_HELP
from ._prescreen import cli_screens
from ._record import RecordOption, attach_recorder

if TYPE_CHECKING:
    from fallback_chain.batch.items_stream import RowRewrite
    from fallback_chain.chain import Chain
    from fallback_chain.config import Config
    from fallback_chain.cost.batch import ChainStep
    from fallback_chain.cost.ledger import Ledger

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REFUSED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
#: What each exit code of ``batch`` means (also in ``--help`` and docs/batch.md).
EXIT_CODES = (
    "0 every row delivered (or already delivered); "
    "1 some rows failed or were invalid (they are in the failures file); "
    "2 bad input, option, config or output target (nothing was written); "
    "3 every row was delivered except rows refused on content grounds (a reported answer, "
    "listed in the failures file); "
    "130 interrupted (run the same command again to resume).")
DEFAULT_CONCURRENCY = 8


class InputFormat(StrEnum):
    csv = "csv"
    jsonl = "jsonl"


class ProgressMode(StrEnum):
    auto = "auto"
    rich = "rich"
    plain = "plain"
    none = "none"


def batch(
    input: Annotated[str, typer.Argument(
        help="CSV (with a header naming a 'prompt' column) or JSONL file, a path or a URL. "
             "Optional fields: id, size, quality, n, seed, negative_prompt, metadata, user, "
             "project; other columns go into metadata.")],
    out: Annotated[str | None, typer.Option(
        "--out", "-o", help="Output folder or URL (s3://bucket/prefix). Default: the chain's "
                            "storage in the config file.")] = None,
    config: Annotated[str | None, typer.Option(
        "--config", "-c",
        help="Config file (default: $FALLBACK_CHAIN_CONFIG, else ./fallback-chain.toml).")]
    = None,
    chain: Annotated[str | None, typer.Option(
        "--chain", help="Chain of the config file to use (default: its default_chain).")]
    = None,
    concurrency: Annotated[int | None, typer.Option(
        "--concurrency", "-j", min=1, max=1024,
        help=f"Items in flight at once (default: the chain's concurrency in the config, "
             f"else {DEFAULT_CONCURRENCY}). Per-provider limits come from the config.")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Validate the input and price the batch (best, expected, worst); "
                          "call no provider, write nothing.")] = False,
    cache: Annotated[str | None, typer.Option(
        help="Folder or URL of a content-addressed cache shared across runs: a request "
             "delivered before is copied from it instead of paid again.")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the summary as one JSON document on stdout.")] = False,
    emulated: Annotated[bool, typer.Option(
        "--emulated", help="Run on built-in emulated providers (no API key; nothing billed; "
                           "faults like the real services').")] = False,
    input_format: Annotated[InputFormat | None, typer.Option(
        "--format", help="Input format, when the file name does not say.")] = None,
    failures: Annotated[str | None, typer.Option(
        help="Where to write the failures file (default: OUT/failures.csv or .jsonl).")]
    = None,
    retry_failed: Annotated[bool, typer.Option(
        "--retry-failed/--no-retry-failed",
        help="On a re-run, try rows that failed before again (default) or only list them.")]
    = True,
    grace: Annotated[float, typer.Option(
        min=0, help="After Ctrl-C, seconds the items in flight get to finish.")] = 3.0,
    storage_option: Annotated[list[str] | None, typer.Option(
        "--storage-option", help="KEY=VALUE for the fsspec filesystem of the output, the cache, "
        "the failures file and an input given as a URL (repeatable; JSON values allowed), e.g. "
        "client_kwargs='{\"endpoint_url\": \"http://...\"}'.")]
    = None,
    failure_rate: Annotated[list[str] | None, typer.Option(
        "--failure-rate", help="With --dry-run: PROVIDER=RATE, the share of calls that fail "
                               "(repeatable), for the expected case.")] = None,
    progress: Annotated[ProgressMode, typer.Option(
        help="Progress display: auto (a bar on a terminal, lines otherwise), rich, plain, "
             "none.")] = ProgressMode.auto,
    emulator: Annotated[str | None, typer.Option(
        hidden=True, help="Use the emulator already serving at this URL.")] = None,
    emulator_key: Annotated[str, typer.Option(
        hidden=True, help="The key that emulator accepts.")] = "test-key",
    fsync: Annotated[bool, typer.Option("--fsync/--no-fsync", hidden=True)] = True,
    metrics_port: MetricsPortOption = None,
    user: Annotated[str | None, typer.Option(
        help="The user (tenant) of rows without a 'user' column: their quota applies and the "
             "ledger records it.")] = None,
    project: Annotated[str | None, typer.Option(
        help="The project of rows without a 'project' column.")] = None,
    draft: Annotated[bool, typer.Option(
        "--draft", help="Drafts: every row at draft quality (a seed fixed per row), on the "
                        "chain's cheapest expected order; then `fallback-chain finalize OUT`. "
                        "With --dry-run, prices the drafts and the finals.")] = False,
    record: RecordOption = None,
    report: Annotated[bool, typer.Option(
        "--report/--no-report", help="Write report.html (see `fallback-chain report`) in OUT "
                                     "at the end.")] = True,
    vendor_batch: Annotated[bool, typer.Option(
        "--vendor-batch", help="Send eligible rows to the first provider with a batch API "
                               "(OpenAI, Gemini) as vendor batch jobs at about half price; "
                               "the chain serves what the batch does not deliver. With "
                               "--dry-run, prices both ways.")] = False,
    batch_deadline: Annotated[str, typer.Option(
        "--batch-deadline", help="With --vendor-batch: cancel a job not finished this long "
                                 "after its submission (e.g. 90m, 6h) and send what remains "
                                 "real-time.")] = "6h",
    batch_poll: Annotated[float, typer.Option(
        "--batch-poll", min=0, hidden=True, help="First poll interval of a vendor batch "
                                                 "job, in seconds.")] = 10.0,
    prescreen: Annotated[list[str] | None, typer.Option(
        "--prescreen", metavar="moderation|blocklist:FILE", help=PRESCREEN_HELP)] = None,
    queue: Annotated[str | None, typer.Option(
        "--queue", help="Send the rows to Celery workers (`fallback-chain worker`) through "
                        "this Redis broker, redis://HOST:PORT/N, instead of generating here; "
                        "see docs/distributed.md.")] = None,
) -> None:
    """Generate images for every row of INPUT into OUT, resumably.

    Re-running the same command resumes: delivered rows are skipped, and a row whose images
    and sidecar were written is never paid for again. Identical rows are generated once.
    Failed rows go to a failures file in the input's format, ready to feed back.

    Exit codes: 0 every row delivered (or already delivered); 1 some rows failed or were
    invalid (they are in the failures file); 2 bad input, option, config or output target
    (nothing was written); 3 every row delivered except rows refused on content grounds (a
    reported answer, listed in the failures file); 130 interrupted (run the same command
    again to resume).
    """
    from fallback_chain.batch.reader import InputError
    from fallback_chain.batch.storage import StorageError
    from fallback_chain.errors import ConfigurationError

    try:
        options = _storage_options(storage_option or [])
        rates = _rates(failure_rate or [])
        vendor = _vendor_options(vendor_batch, batch_deadline, batch_poll)
    except ValueError as exc:
        raise _fail(str(exc), as_json) from None
    if queue is not None and not dry_run:
        from .queue_batch import run_queued

        if cache or draft or vendor_batch or prescreen:
            raise _fail("--cache, --draft, --vendor-batch and --prescreen are not available "
                        "with --queue", as_json)

        try:
            code = run_queued(queue, input, out, chain, failures, input_format, options, fsync,
                              progress, as_json)
        except (InputError, StorageError, ConfigurationError, FileNotFoundError,
                ValueError) as exc:
            raise _fail(str(exc), as_json) from None
        raise typer.Exit(code)
    try:
        with _chain_source(config, chain, emulated, emulator, emulator_key, as_json,
                           need_chain=not dry_run) as source:
            target = out or source.storage
            screens = cli_screens(prescreen or [], source.emulator)
            if screens and source.chain is not None:
                source.chain.add_prescreen(screens)
            if dry_run and vendor is not None:
                from .vendor_batch import dry_run_both_ways

                code = dry_run_both_ways(source.steps, source.label, input, target,
                                         input_format.value if input_format else None,
                                         options, rates, as_json)
            elif dry_run and draft:
                code = _dry_run_drafts(source, input, target, input_format, options, rates,
                                       as_json)
            elif dry_run:
                code = _dry_run(source, input, target, input_format, options, rates, as_json)
            elif target is None:
                raise _fail("no output given: pass --out DIR_OR_URL (or set storage for the "
                            "chain in the config file)", as_json)
            else:
                rewrite = None
                if draft:
                    from fallback_chain.batch.drafts import draft_row

                    assert source.chain is not None
                    source.chain.order = "cost"
                    rewrite = draft_row
                attach_recorder(source.chain, record)
                with serve_metrics(source.chain, metrics_port):
                    code = _run(source, input, target, concurrency, cache, input_format,
                                failures, retry_failed, grace, options, fsync, progress, as_json,
                                {"user": user, "project": project}, rewrite=rewrite,
                                vendor=vendor)
                if report and code != EXIT_INTERRUPTED:
                    _write_report(target, options, as_json)
    except (InputError, StorageError, ConfigurationError, FileNotFoundError) as exc:
        raise _fail(str(exc), as_json) from None
    raise typer.Exit(code)


# ------------------------------------------------------------------------------ the chain

class _Source:
    """Where the chain comes from: a built chain (or, for a dry run, its price steps), the
    default output and concurrency the config gives."""

    def __init__(self, chain: Chain | None, steps: list[ChainStep], storage: str | None,
                 concurrency: int | None, label: str) -> None:
        self.chain = chain
        self.steps = steps
        self.storage = storage
        self.concurrency = concurrency
        self.label = label
        #: The emulator's root URL and key, on an emulated run.
        self.emulator: tuple[str, str] | None = None


@contextlib.contextmanager
def _chain_source(config: str | None, name: str | None, emulated: bool, emulator: str | None,
                  emulator_key: str, as_json: bool, *, need_chain: bool) -> Iterator[_Source]:
    from fallback_chain.config import ConfigNotFoundError, find_config

    cfg: Config | None = None
    if config is not None or not (emulated or emulator):
        from pathlib import Path

        from ._output import open_config

        cfg = open_config(Path(config) if config else None, as_json=as_json, chains=[name],
                          emulated=emulated or emulator is not None)
    else:
        try:
            found = find_config(None)
        except ConfigNotFoundError:
            found = None
        if found is not None:
            from ._output import open_config

            cfg = open_config(found, as_json=as_json, chains=[name], emulated=True)
    try:
        with (_emulator(emulated, emulator, emulator_key, start=need_chain) as (url, key),
              contextlib.ExitStack() as stack):
            ledger = None
            if url is not None and need_chain:  # emulated attempts: the emulated ledger
                from fallback_chain.cost.ledger import Ledger

                from ._output import emulated_ledger_path

                ledger = stack.enter_context(Ledger(emulated_ledger_path()))
            source = _source(cfg, name, url, key, need_chain, ledger)
            source.emulator = None if url is None else (url, key)
            yield source
    finally:
        if cfg is not None:
            cfg.close()


@contextlib.contextmanager
def _emulator(emulated: bool, url: str | None, key: str, *, start: bool
              ) -> Iterator[tuple[str | None, str]]:
    """The emulator's URL and key: one already running at ``url``, or the demo emulator
    served on a free loopback port for the duration (not started for a dry run)."""
    from fallback_chain.demo import KEY

    if url is not None:
        yield url.rstrip("/"), key
    elif emulated and not start:
        yield "http://127.0.0.1:9", KEY  # a dry run builds nothing that would connect
    elif emulated:
        from fallback_chain.demo import demo_emulator
        from fallback_chain.emulator import serve_in_thread

        with serve_in_thread(demo_emulator()) as base_url:
            yield base_url, KEY
    else:
        yield None, key


def _source(cfg: Config | None, name: str | None, url: str | None, key: str,
            need_chain: bool, ledger: Ledger | None = None) -> _Source:
    from fallback_chain.batch.pricing import chain_steps
    from fallback_chain.cost.batch import ChainStep

    if cfg is None:  # emulated, no config file: the demo chain
        from fallback_chain.demo import build_demo_chain

        assert url is not None
        demo = build_demo_chain(url, api_key=key, name="demo", on_event=ledger)
        return _Source(demo, chain_steps(demo), None, None, "demo (emulated)")
    chain_name = name or cfg.default_chain
    spec = cfg.chain_config(chain_name)
    steps = [ChainStep(p.vendor, p.model) for p in spec.providers]
    built: Chain | None = None
    if need_chain:
        from fallback_chain.config import Emulated

        target = Emulated(url, key) if url is not None else None
        built = cfg.chain(chain_name, emulated=target, ledger=url is None, log=False)
        if ledger is not None:
            built.events.subscribe(ledger)
    label = chain_name + (" (emulated)" if url is not None else "")
    return _Source(built, steps, cfg.storage(chain_name), spec.concurrency, label)


# ------------------------------------------------------------------------------ running

def _run(source: _Source, input: str, out: str, concurrency: int | None, cache: str | None,
         input_format: InputFormat | None, failures: str | None, retry_failed: bool,
         grace: float, options: dict[str, Any], fsync: bool, progress: ProgressMode,
         as_json: bool, tenant: dict[str, str | None] | None = None, *,
         rewrite: RowRewrite | None = None, vendor: Any = None) -> int:
    from fallback_chain.batch.engine import BatchOptions, run_batch
    from fallback_chain.batch.progress import make_reporter
    from fallback_chain.batch.report import print_summary

    from ._output import print_json

    assert source.chain is not None
    chain = source.chain
    opts = BatchOptions(
        concurrency=concurrency or source.concurrency or DEFAULT_CONCURRENCY,
        cache=cache, failures=failures,
        input_format=input_format.value if input_format else None, retry_failed=retry_failed,
        fsync=fsync, grace_s=grace, storage_options=options,
        input_options=options if "://" in input else {}, rewrite=rewrite,
        user=(tenant or {}).get("user"), project=(tenant or {}).get("project"),
        vendor_batch=vendor)
    reporter = make_reporter(progress.value)

    async def go() -> Any:
        async with chain:
            return await run_batch(chain, input, out, opts, reporter=reporter)

    summary = asyncio.run(go())
    if as_json:
        print_json({"chain": source.label, **summary.to_dict()})
    else:
        print_summary(summary)
        if source.label.endswith("(emulated)"):
            from ._output import EMULATED_LEDGER

            print(f"attempts (emulated ledger): ./{EMULATED_LEDGER}\n"
                  "  see them with: fallback-chain cost report --emulated")
    return exit_code(summary)


def _write_report(out: str, options: dict[str, Any], as_json: bool) -> None:
    """The HTML report of the run's folder; a failure to write it is reported, never fatal
    (the images and the manifest are what counts)."""
    from fallback_chain.batch.storage import Storage
    from fallback_chain.report import write_report

    storage = Storage(out, options)
    try:
        where = write_report(storage)
    except Exception as exc:  # the run itself succeeded; say why there is no report
        print(f"report: not written ({exc})", file=sys.stderr)
        return
    finally:
        storage.close()
    if not as_json:
        print(f"report: {where}")


def exit_code(summary: Any) -> int:
    """The exit code of a run (see :data:`EXIT_CODES`)."""
    if summary.interrupted:
        return EXIT_INTERRUPTED
    if summary.ok:
        return EXIT_OK
    if (summary.error is None and not summary.invalid_rows and summary.refused
            and summary.failed == summary.refused):
        return EXIT_REFUSED
    return EXIT_FAILED


def _price(source: _Source, input: str, out: str | None, input_format: InputFormat | None,
           options: dict[str, Any], rates: dict[str, float],
           rewrite: RowRewrite | None = None) -> Any:
    from fallback_chain.batch.pricing import dry_run

    return dry_run(source.steps, input, out=out,
                   input_format=input_format.value if input_format else None,
                   input_options=options if "://" in input else {},
                   storage_options=options, failure_rates=rates, rewrite=rewrite)


def _dry_run_drafts(source: _Source, input: str, out: str | None,
                    input_format: InputFormat | None, options: dict[str, Any],
                    rates: dict[str, float], as_json: bool) -> int:
    """``--draft --dry-run``: price the drafts (into ``out``) and the finals of every row."""
    from fallback_chain.batch.drafts import draft_row, final_row
    from fallback_chain.batch.report import print_dry_run

    from ._output import print_json

    drafts = _price(source, input, out, input_format, options, rates, draft_row)
    # drafts run on the cheapest expected order: each provider's price for all the drafts
    cheapest = [step for step, _ in sorted(zip(source.steps, drafts.estimate.steps,
                                               strict=True), key=lambda p: p[1].worst_usd)]
    if cheapest != source.steps:
        by_cost = _Source(source.chain, cheapest, source.storage, source.concurrency,
                          source.label)
        drafts = _price(by_cost, input, out, input_format, options, rates, draft_row)
    # finals (`finalize`) run on the chain's own order
    finals = _price(source, input, None, input_format, options, rates, final_row)
    if as_json:
        print_json({"chain": source.label, "dry_run": True, "draft": drafts.to_dict(),
                    "final": finals.to_dict()})
    else:
        print("drafts (quality draft):")
        print_dry_run(drafts)
        print("\nfinals of every draft (quality final; `finalize --all`):")
        print_dry_run(finals)
    return EXIT_OK if not drafts.invalid else EXIT_FAILED


def _dry_run(source: _Source, input: str, out: str | None,
             input_format: InputFormat | None, options: dict[str, Any],
             rates: dict[str, float], as_json: bool) -> int:
    from fallback_chain.batch.report import print_dry_run

    from ._output import print_json

    report = _price(source, input, out, input_format, options, rates)
    if as_json:
        print_json({"chain": source.label, "dry_run": True, **report.to_dict()})
    else:
        print_dry_run(report)
    return EXIT_OK if not report.invalid else EXIT_FAILED


# ------------------------------------------------------------------------------ helpers

def _fail(message: str, as_json: bool) -> typer.Exit:
    from fallback_chain.secrets import redact

    if as_json:
        typer.echo(json.dumps({"ok": False, "error": redact(message)}, indent=2))
    else:
        print(redact(f"error: {message}"), file=sys.stderr)
    return typer.Exit(EXIT_USAGE)


def _storage_options(items: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--storage-option {item!r}: expected KEY=VALUE")
        try:
            options[key.strip()] = json.loads(value)
        except ValueError:
            options[key.strip()] = value
    return options


def _vendor_options(on: bool, deadline: str, poll: float) -> Any:
    """``--vendor-batch`` options (``None`` when off)."""
    if not on:
        return None
    from fallback_chain.batch.vendor.options import VendorBatchOptions, parse_duration

    try:
        return VendorBatchOptions(deadline_s=parse_duration(deadline), poll_initial_s=poll)
    except ValueError as exc:
        raise ValueError(f"--batch-deadline: {exc}") from None


def _rates(items: list[str]) -> dict[str, float]:
    rates: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            rates[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--failure-rate {item!r}: expected PROVIDER=RATE") from None
    return rates


if __name__ == "__main__":  # `python -m fallback_chain.cli.batch ...`, the command on its own
    typer.run(batch)
