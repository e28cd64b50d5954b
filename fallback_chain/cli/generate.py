"""``fallback-chain generate "prompt"``: one request through a configured chain.

Saves the images and a JSON sidecar each, prints every attempt (provider, outcome, status,
latency, cost) and the result. Exit codes: 0 delivered, 1 nothing delivered, 2 bad input or
config, 3 refused on content grounds, 4 over budget, 5 deadline passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fallback_chain.richtable import print_table

from ._metrics import MetricsPortOption, serve_metrics
from ._output import (
    ChainOption,
    ConfigOption,
    JsonOption,
    attempt_dict,
    attempts_table,
    clean,
    config_warnings,
    console,
    error_dict,
    error_kind,
    fail,
    open_config,
    print_json,
    save_images,
    usd,
)
from ._record import RecordOption, attach_recorder

if TYPE_CHECKING:
    from fallback_chain.chain import Chain
    from fallback_chain.config import Config, Emulated
    from fallback_chain.cost.ledger import Ledger
    from fallback_chain.errors import ChainError
    from fallback_chain.events import Event
    from fallback_chain.request import ImageRequest
    from fallback_chain.results import ChainResult


class Quality(StrEnum):
    draft = "draft"
    standard = "standard"
    final = "final"


class Format(StrEnum):
    png = "png"
    jpeg = "jpeg"
    webp = "webp"


def generate(
    prompt: Annotated[str, typer.Argument(help="What to draw.")],
    size: Annotated[str, typer.Option(
        help="WxH in pixels, an aspect ratio such as 16:9, or auto.")] = "auto",
    quality: Annotated[Quality, typer.Option(
        help="draft, standard or final; each provider maps it to its own settings.")]
    = Quality.standard,
    n: Annotated[int, typer.Option("--n", "-n", min=1, max=10, help="Number of images.")] = 1,
    seed: Annotated[int | None, typer.Option(help="Seed, for providers that take one.")] = None,
    negative_prompt: Annotated[str | None, typer.Option(
        help="What to avoid, for providers that take it.")] = None,
    output_format: Annotated[Format, typer.Option("--format", help="Image format.")]
    = Format.png,
    chain: ChainOption = None,
    config: ConfigOption = None,
    out: Annotated[Path | None, typer.Option(
        file_okay=False, help="Folder for the images and their sidecar (default: the chain's "
        "storage folder, else the current folder).")] = None,
    emulated: Annotated[bool, typer.Option(
        "--emulated", help="Run against a built-in emulator instead of the real vendors (no "
        "keys needed, nothing billed): the configured chain pointed at it if a config file is "
        "found, else the demo chain (gemini, leonardo, openai), like batch and compare.")]
    = False,
    as_json: JsonOption = False,
    metrics_port: MetricsPortOption = None,
    user: Annotated[str | None, typer.Option(
        help="The user (tenant) asking: their quota applies and the ledger records it.")]
    = None,
    project: Annotated[str | None, typer.Option(
        help="The project asking (its quota applies too).")] = None,
    record: RecordOption = None,
) -> None:
    """Generate images for PROMPT through the configured chain, trying providers in order."""
    from fallback_chain.config import ConfigError
    from fallback_chain.errors import ChainError, RequestValidationError
    from fallback_chain.request import ImageRequest

    if emulated and config is None and chain is None and _no_config():
        _generate_on_demo_chain(prompt, size, quality, n, seed, negative_prompt, output_format,
                                out, as_json, {"user": user, "project": project}, record)
        return
    cfg = open_config(config, as_json=as_json, chains=[chain], emulated=emulated)
    try:
        cfg.chain_config(chain)  # ConfigError for an unknown chain name
        name = chain or cfg.default_chain
        folder = _output_folder(cfg, name, out)
        request = ImageRequest(prompt=prompt, size=size, quality=quality.value, n=n, seed=seed,
                               negative_prompt=negative_prompt,
                               output_format=output_format.value, user=user, project=project)
    except ConfigError as exc:
        raise fail(str(exc), as_json=as_json, kind="config") from None
    except RequestValidationError as exc:
        raise fail(exc.message, as_json=as_json, kind="invalid_request") from None
    try:
        with _target(emulated) as target, contextlib.ExitStack() as stack:
            try:
                # an emulated run goes to the emulated ledger, never the config's
                built = cfg.chain(name, emulated=target, ledger=target is None, log=False)
            except ConfigError as exc:
                raise fail(str(exc), as_json=as_json, kind="config") from None
            if target is not None:
                built.events.subscribe(stack.enter_context(_emulated_ledger()))
            attach_recorder(built, record)
            started = time.time()
            with serve_metrics(built, metrics_port):
                outcome = _run(built, request, quiet=as_json)
    finally:
        cfg.close()
    if isinstance(outcome, ChainError):
        _report_error(outcome, as_json)
        raise typer.Exit(error_kind(outcome)[1])
    saved = save_images(outcome, request, folder, outcome.request_id, chain=name,
                        started=started)
    _report_result(outcome, saved, name, as_json, emulated,
                   config_warnings(cfg, [name], emulated=emulated))


def _no_config() -> bool:
    from fallback_chain.config import ConfigNotFoundError, find_config

    try:
        find_config(None)
    except ConfigNotFoundError:
        return True
    return False


def _generate_on_demo_chain(prompt: str, size: str, quality: Quality, n: int, seed: int | None,
                            negative_prompt: str | None, output_format: Format,
                            out: Path | None, as_json: bool,
                            tenant: dict[str, str | None] | None = None,
                            record: Path | None = None) -> None:
    """``--emulated`` with no config file: the demo chain on the built-in emulator, exactly as
    ``batch --emulated`` and ``compare --emulated`` do."""
    from fallback_chain.demo import KEY, build_demo_chain
    from fallback_chain.emulator import Emulator, serve_in_thread
    from fallback_chain.errors import ChainError, RequestValidationError
    from fallback_chain.request import ImageRequest

    try:
        request = ImageRequest(prompt=prompt, size=size, quality=quality.value, n=n, seed=seed,
                               negative_prompt=negative_prompt,
                               output_format=output_format.value, **(tenant or {}))
    except RequestValidationError as exc:
        raise fail(exc.message, as_json=as_json, kind="invalid_request") from None
    folder = out if out is not None else Path(".")
    _check_folder(folder, as_json)
    emulator = Emulator(faults={"leonardo": {"job_delay_s": 0.2}}, api_keys=KEY)
    with serve_in_thread(emulator) as base_url, _emulated_ledger() as ledger:
        built = build_demo_chain(base_url, api_key=KEY, name="demo", on_event=ledger)
        attach_recorder(built, record)
        started = time.time()
        outcome = _run(built, request, quiet=as_json)
    if isinstance(outcome, ChainError):
        _report_error(outcome, as_json)
        raise typer.Exit(error_kind(outcome)[1])
    saved = save_images(outcome, request, folder, outcome.request_id, chain="demo",
                        started=started)
    _report_result(outcome, saved, "demo", as_json, True, [])


def _emulated_ledger() -> Ledger:
    from fallback_chain.cost.ledger import Ledger

    from ._output import emulated_ledger_path

    return Ledger(emulated_ledger_path())


def _check_folder(folder: Path, as_json: bool) -> None:
    if folder.exists() and not folder.is_dir():
        raise fail(f"{folder}: exists and is not a folder", as_json=as_json)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fail(f"{folder}: cannot create the folder ({exc.strerror or exc})",
                   as_json=as_json) from None


def _output_folder(cfg: Config, name: str, out: Path | None) -> Path:
    if out is not None:
        return out
    storage = cfg.storage(name)
    if storage is None:
        return Path(".")
    if "://" in storage:
        raise cfg.error(("chains", name, "storage"),
                        f"{storage} is a URL; `generate` writes to a local folder: pass --out DIR "
                        "(`batch` writes to URLs)")
    return Path(storage)


@contextlib.contextmanager
def _target(emulated: bool) -> Iterator[Emulated | None]:
    if not emulated:
        yield None
        return
    from fallback_chain.config import Emulated
    from fallback_chain.emulator import Emulator, serve_in_thread

    emulator = Emulator(faults={"leonardo": {"job_delay_s": 0.2}})
    with serve_in_thread(emulator) as base_url:
        yield Emulated.from_emulator(emulator, base_url)


def _run(chain: Chain, request: ImageRequest, *, quiet: bool) -> ChainResult | ChainError:
    from fallback_chain.errors import ChainError
    from fallback_chain.events import AttemptFinished

    status_line = console(stderr=True)

    async def go() -> ChainResult | ChainError:
        async with chain:
            try:
                return await chain.agenerate(request)
            except ChainError as exc:
                return exc

    if quiet:
        return asyncio.run(go())
    with status_line.status(f"generating with chain {chain.name!r}…") as status:
        def show(event: Event) -> None:
            if isinstance(event, AttemptFinished):
                a = event.attempt
                status.update(f"{a.provider}#{a.attempt}: {a.outcome.value}; continuing…")

        chain.events.subscribe(show)
        return asyncio.run(go())


def _report_result(result: ChainResult, saved: dict[str, Any], chain: str,
                   as_json: bool, emulated: bool, warnings: list[str]) -> None:
    if as_json:
        print_json({"ok": True, "chain": chain, "emulated": emulated, "warnings": warnings,
                    "request_id": result.request_id, "provider": result.provider,
                    "model": result.model, "revised_prompt": result.revised_prompt,
                    "cost_usd": result.cost_usd, "latency_s": result.latency_s,
                    "images": saved["images"], "sidecar": saved["sidecar"],
                    "attempts": [attempt_dict(a) for a in result.attempts]})
        return
    out = console()
    print_table(out, attempts_table(result.attempts, title=f"attempts (chain {chain}"
                             + (", emulated)" if emulated else ")")))
    out.print(f"[green]delivered[/green] by {result.provider}:{result.model} in "
              f"{result.latency_s:.2f}s for {usd(result.cost_usd)}", markup=True)
    if result.revised_prompt:
        out.print(f"revised prompt: {clean(result.revised_prompt)}", markup=False)
    for item in saved["images"]:
        out.print(f"  {item['path']}  ({item['width']}x{item['height']})", markup=False)
    out.print(f"  {saved['sidecar']}  (sidecar)", markup=False)


def _report_error(exc: ChainError, as_json: bool) -> None:
    from fallback_chain.errors import ContentPolicyError

    if as_json:
        print_json(error_dict(exc))
        return
    kind, _ = error_kind(exc)
    out = console()
    if exc.attempts:
        print_table(out, attempts_table(exc.attempts, title="attempts"))
    err = console(stderr=True)
    if isinstance(exc, ContentPolicyError):
        err.print(f"refused on content grounds by {exc.provider}: {clean(exc.reason)}",
                  markup=False)
    else:
        err.print(f"not delivered ({kind}): {clean(exc.message)}", markup=False)
    err.print(f"spent {usd(exc.cost_usd)} on {len(exc.attempts)} attempt(s)", markup=False)

