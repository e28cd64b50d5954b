"""``fallback-chain check``: preflight every provider of a chain (``provider.check()``: the
key is accepted, the model exists), spending nothing, and the shared state (Redis) when the
config names one. A provider that cannot even be built (no
key, bad option) is reported on its own row; the command never stops at the first problem.
Exit code 0 when every provider passed, 1 otherwise, 2 for a bad or missing config."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fallback_chain.richtable import print_table

from ._output import (
    EXIT_FAILED,
    ChainOption,
    ConfigOption,
    JsonOption,
    clean,
    console,
    fail,
    open_config,
    print_json,
)

if TYPE_CHECKING:
    from fallback_chain.config import BuiltProvider, Config


def check(
    config: ConfigOption = None,
    chain: ChainOption = None,
    all_chains: Annotated[bool, typer.Option(
        "--all", help="Check every chain of the config file.")] = False,
    timeout: Annotated[float, typer.Option(
        min=0.1, help="Seconds to wait for each provider's answer.")] = 15.0,
    as_json: JsonOption = False,
) -> None:
    """Check each provider's credentials and model without spending anything."""
    from fallback_chain.config import ConfigError

    cfg = open_config(config, as_json=as_json, chains=None if all_chains else [chain])
    try:
        names = cfg.chain_names if all_chains else [chain or cfg.default_chain]
        rows: list[dict[str, Any]] = []
        for name in names:
            rows.extend(asyncio.run(_check_chain(cfg, name, timeout)))
        state = asyncio.run(_check_state(cfg, timeout))
        if state is not None:
            rows.append(state)
    except ConfigError as exc:
        raise fail(str(exc), as_json=as_json, kind="config") from None
    finally:
        cfg.close()
    ok = all(r["ok"] for r in rows)
    if as_json:
        print_json({"ok": ok, "config": str(cfg.path),
                    "warnings": cfg.warnings if all_chains else cfg.warnings_for(names),
                    "providers": rows})
    else:
        _print(rows, str(cfg.path))
    if not ok:
        raise typer.Exit(EXIT_FAILED)


async def _check_state(cfg: Config, timeout: float) -> dict[str, Any] | None:
    """A row for the shared state, when the config keeps it in Redis."""
    from fallback_chain.state.redis import RedisState

    state = cfg.state()
    if not isinstance(state, RedisState):
        return None
    try:
        why = await state.ping(timeout)
    finally:
        await state.aclose()
    return {"chain": "*", "provider": "shared state", "vendor": "redis", "model": state.url,
            "ok": why is None, "detail": clean(why or "reachable; scripts run")}


async def _check_chain(cfg: Config, name: str, timeout: float) -> list[dict[str, Any]]:
    built = cfg.build_providers(name)
    return list(await asyncio.gather(*(_check_one(name, b, timeout) for b in built)))


async def _check_one(chain: str, built: BuiltProvider, timeout: float) -> dict[str, Any]:
    spec = built.spec
    # the provider as attempts name it (its name, default the vendor), beside its model: one
    # spelling everywhere (not the internal state key ``openai/MODEL``)
    row: dict[str, Any] = {"chain": chain, "provider": spec.name or spec.vendor,
                           "vendor": spec.vendor, "model": spec.model_id}
    if built.provider is None:
        problems = built.error.problems if built.error is not None else []
        detail = "; ".join(p.message for p in problems) or "could not be built"
        return {**row, "ok": False, "detail": clean(detail)}
    provider = built.provider
    try:
        async with asyncio.timeout(timeout):
            result = await provider.check()
    except TimeoutError:
        return {**row, "ok": False, "detail": f"no answer within {timeout:g}s"}
    except Exception as exc:  # a preflight must report, never crash the command
        return {**row, "ok": False, "detail": clean(f"{type(exc).__name__}: {exc}")}
    finally:
        with contextlib.suppress(Exception):  # closing a pool must not hide the answer
            await provider.aclose()
    return {**row, "ok": result.ok, "detail": clean(result.detail)}


def _print(rows: list[dict[str, Any]], path: str) -> None:
    from rich.markup import escape
    from rich.table import Table

    chains = sorted({r["chain"] for r in rows})
    table = Table(title=f"preflight of {', '.join(chains)} ({path}); nothing was spent",
                  title_justify="left")
    several = len(chains) > 1
    if several:
        table.add_column("chain")
    for col in ("provider", "model", "", "detail"):
        table.add_column(col, overflow="fold")
    for r in rows:
        mark = "[green]ok[/green]" if r["ok"] else "[red]FAILED[/red]"
        cells = [r["provider"], r["model"], mark, escape(r["detail"])]
        table.add_row(*([r["chain"], *cells] if several else cells))
    out = console()
    print_table(out, table)
    failed = sum(1 for r in rows if not r["ok"])
    out.print(f"{len(rows) - failed} of {len(rows)} provider(s) ready"
              + (f"; {failed} failed" if failed else ""), markup=False)
