"""Shared pieces of the commands: option types, exit codes, loading the config, JSON and Rich
output, attempt tables and image sidecars.

Only typer is imported at module level (``--help`` must stay fast); Rich, pydantic and the
library load inside the functions. Every text that may come from a vendor passes through
``redact`` before it is printed.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from fallback_chain.config import Config
    from fallback_chain.errors import ChainError
    from fallback_chain.request import ImageRequest
    from fallback_chain.results import Attempt, ChainResult

# ------------------------------------------------------------------------------ exit codes

EXIT_OK = 0
EXIT_FAILED = 1            # nothing delivered (chain exhausted), or a preflight failed
EXIT_USAGE = 2             # bad option, bad or missing config file, invalid request
EXIT_CONTENT_POLICY = 3    # a provider refused the prompt on content grounds
EXIT_BUDGET = 4            # no provider fitted the budget
EXIT_DEADLINE = 5          # the request's deadline passed

# ------------------------------------------------------------------------------ ledgers

#: Where real runs record their attempts when neither ``--ledger``, ``$FALLBACK_CHAIN_LEDGER``
#: nor the config file's ``ledger`` says otherwise.
DEFAULT_LEDGER = "fallback-chain-ledger.db"
LEDGER_ENV = "FALLBACK_CHAIN_LEDGER"
#: Where ``--emulated`` runs record their attempts (emulated money never mixes with real spend):
#: this file in the current folder; ``fallback-chain cost report --emulated`` reads it.
EMULATED_LEDGER = "fallback-chain-emulated-ledger.db"


def emulated_ledger_path() -> Path:
    return Path(EMULATED_LEDGER)


# ------------------------------------------------------------------------------ options

ConfigOption = Annotated[Path | None, typer.Option(
    "--config", "-c", dir_okay=False,
    help="Config file (default: $FALLBACK_CHAIN_CONFIG, else ./fallback-chain.toml).")]
ChainOption = Annotated[str | None, typer.Option(
    "--chain", help="Chain of the config file to use (default: its default_chain).")]
JsonOption = Annotated[bool, typer.Option(
    "--json", help="Print one JSON document on stdout instead of tables (for scripts).")]


# ------------------------------------------------------------------------------ printing

def console(*, stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def clean(text: object) -> str:
    """``text`` as a string with every key-shaped or registered secret masked."""
    from fallback_chain.secrets import redact

    return redact(str(text))


def print_json(document: Any) -> None:
    """One JSON document on stdout, secrets masked."""
    typer.echo(clean(json.dumps(document, indent=2, default=str, ensure_ascii=False)))


def fail(message: str, code: int = EXIT_USAGE, *, as_json: bool = False,
         kind: str = "usage") -> typer.Exit:
    """Report ``message`` (stderr, or a JSON document with ``--json``) and return the exit
    to raise."""
    if as_json:
        print_json({"ok": False, "error": kind, "message": clean(message)})
    else:
        typer.echo(clean(f"error: {message}"), err=True)
    return typer.Exit(code)


def warn(messages: Iterable[str]) -> None:
    out = console(stderr=True)
    for message in messages:
        out.print(f"[yellow]warning:[/yellow] {_escape(clean(message))}")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def usd(x: float | None) -> str:
    if x is None:
        return "-"
    return f"${x:,.4f}" if abs(x) < 100 else f"${x:,.2f}"


# ------------------------------------------------------------------------------ config

def open_config(path: Path | None, *, as_json: bool,
                chains: Sequence[str | None] | None = (None,), emulated: bool = False
                ) -> Config:
    """The config file (``--config``, ``$FALLBACK_CHAIN_CONFIG`` or ``./fallback-chain.toml``),
    loaded; on failure, the problem is printed and the command exits with code 2. Warnings that
    concern ``chains`` (``None``: the default chain; ``chains=None``: every chain) are printed
    on stderr unless ``as_json``; with ``emulated`` (no key is read), warnings about the secrets
    file are left out."""
    from fallback_chain.config import ConfigError, ConfigNotFoundError, find_config, load_config

    try:
        found = find_config(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # shown below, once, with their lines
            config = load_config(found)
    except ConfigNotFoundError as exc:
        raise fail(str(exc), as_json=as_json, kind="no_config") from None
    except ConfigError as exc:
        raise fail(str(exc), as_json=as_json, kind="config") from None
    if not as_json:
        warn(config_warnings(config, chains, emulated=emulated))
    return config


def config_warnings(config: Config, chains: Sequence[str | None] | None = (None,), *,
                    emulated: bool = False) -> list[str]:
    """The warnings of ``config`` that concern ``chains``; with ``emulated``, none about the
    secrets file (an emulated run reads no key)."""
    wanted = (None if chains is None
              else {config.default_chain if n is None else n for n in chains})
    return [n.render(config.path) for n in config.notes
            if (wanted is None or n.loc[:1] != ("chains",) or n.loc[1] in wanted)
            and not (emulated and n.loc[:1] == ("secrets",))]


# ------------------------------------------------------------------------------ attempts

def attempt_dict(a: Attempt) -> dict[str, Any]:
    data = a.model_dump(mode="json")
    if data.get("message"):
        data["message"] = clean(data["message"])
    return data


def attempts_table(attempts: Sequence[Attempt], *, title: str | None = None) -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for col, justify in (("provider", "left"), ("#", "right"), ("outcome", "left"),
                         ("status", "right"), ("latency", "right"), ("cost", "right"),
                         ("detail", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for a in attempts:
        style = "green" if a.outcome == "success" else (
            "dim" if not a.outcome.was_called else "red")
        detail = a.message or ""
        if len(detail) > 90:
            detail = detail[:89] + "…"
        table.add_row(a.provider, str(a.attempt),
                      f"[{style}]{a.outcome.value}[/{style}]",
                      "" if a.status_code is None else str(a.status_code),
                      f"{a.latency_s:.2f}s" if a.outcome.was_called else "",
                      usd(a.cost_usd) if a.cost_usd else "", _escape(clean(detail)))
    return table


def error_kind(exc: ChainError) -> tuple[str, int]:
    """The typed reason of a chain error and its exit code."""
    from fallback_chain.errors import (
        BudgetExceededError,
        ContentPolicyError,
        DeadlineExceededError,
        RequestValidationError,
    )

    if isinstance(exc, ContentPolicyError):
        return "content_policy", EXIT_CONTENT_POLICY
    if isinstance(exc, BudgetExceededError):
        return "budget_exceeded", EXIT_BUDGET
    if isinstance(exc, DeadlineExceededError):
        return "deadline_exceeded", EXIT_DEADLINE
    if isinstance(exc, RequestValidationError):
        return "invalid_request", EXIT_USAGE
    return "exhausted", EXIT_FAILED


def error_dict(exc: ChainError) -> dict[str, Any]:
    from fallback_chain.errors import ContentPolicyError

    kind, code = error_kind(exc)
    data: dict[str, Any] = {"ok": False, "error": kind, "exit_code": code,
                            "message": clean(exc.message), "request_id": exc.request_id,
                            "cost_usd": exc.cost_usd,
                            "attempts": [attempt_dict(a) for a in exc.attempts]}
    if isinstance(exc, ContentPolicyError):
        data.update(provider=exc.provider, reason=clean(exc.reason),
                    categories=exc.categories)
    return data


# ------------------------------------------------------------------------------ files

def sidecar(result: ChainResult, request: ImageRequest, files: Sequence[str], *,
            chain: str | None, started: float, finished: float) -> dict[str, Any]:
    """The JSON written beside the images of one request, in the batch sidecar's format
    (``fallback_chain.batch.sidecar``): what was asked, what came back (each image's file,
    size and hash), what it cost, every attempt and the moderation outcome. No key appears in
    it (attempt messages are redacted)."""
    from fallback_chain.batch.sidecar import SCHEMA, delivered_format, iso, moderation

    first = result.images[0]
    return {
        "schema": SCHEMA, "id": result.request_id, "prompt": request.prompt,
        "size_requested": request.size, "quality": request.quality, "n": request.n,
        "seed": request.seed, "negative_prompt": request.negative_prompt,
        "output_format_requested": request.output_format, "background": request.background,
        "metadata": request.metadata, "revised_prompt": result.revised_prompt,
        "provider": result.provider, "model": result.model,
        "size_delivered": f"{first.width}x{first.height}",
        "output_format_delivered": delivered_format([im.mime_type for im in result.images]),
        "images": [{"file": f, "width": im.width, "height": im.height,
                    "mime_type": im.mime_type, "sha256": im.sha256, "bytes": len(im.data)}
                   for f, im in zip(files, result.images, strict=True)],
        "cost_usd": result.cost_usd, "latency_s": round(result.latency_s, 4),
        "attempts": [attempt_dict(a) for a in result.attempts], "usage": result.usage,
        "moderation": moderation(list(result.attempts), True), "shared": None,
        "request_id": result.request_id, "chain": chain,
        "started_at": iso(started), "finished_at": iso(finished),
    }


def save_images(result: ChainResult, request: ImageRequest, out: Path, stem: str, *,
                chain: str | None = None, started: float | None = None) -> dict[str, Any]:
    """Write the images of ``result`` (atomically) as ``STEM.EXT`` (``STEM~1.EXT``, ... when
    there are several, as ``batch`` names them) and one sidecar ``STEM.json``; return their
    paths and details."""
    import time

    from fallback_chain.batch.naming import image_name

    finished = time.time()
    paths = []
    count = len(result.images)
    for i, image in enumerate(result.images):
        paths.append(image.save(out / image_name(stem, i, count, image.extension)))
    meta = out / f"{stem}.json"
    document = sidecar(result, request, [p.name for p in paths], chain=chain,
                       started=finished - result.latency_s if started is None else started,
                       finished=finished)
    _write_atomic(meta, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return {"sidecar": str(meta),
            "images": [{"path": str(p), "width": im.width, "height": im.height,
                        "mime_type": im.mime_type, "sha256": im.sha256}
                       for p, im in zip(paths, result.images, strict=True)]}


def _write_atomic(path: Path, text: str) -> None:
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
