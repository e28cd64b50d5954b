"""``fallback-chain emulate``: serve the emulated OpenAI, Gemini and Leonardo APIs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def emulate(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8700,
    host: Annotated[str, typer.Option(help="Address to bind (keep it on loopback).")]
    = "127.0.0.1",
    faults: Annotated[Path | None, typer.Option(
        help="Fault configuration (TOML or JSON); see docs/emulator.md.",
        exists=True, dir_okay=False, readable=True)] = None,
    api_key: Annotated[str, typer.Option(
        help="The key every vendor accepts; '*' accepts any non-empty key.")] = "test-key",
    seed: Annotated[int | None, typer.Option(
        help="Seed for faults and ids (overrides the file's).")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    admin_token: Annotated[str | None, typer.Option(
        envvar="FALLBACK_CHAIN_EMULATOR_ADMIN_TOKEN",
        help="Require this token (header X-Emulator-Token) on the /_emulator admin API; "
             "without one it answers loopback requests only.")] = None,
    replay: Annotated[Path | None, typer.Option(
        help="Answer vendor requests with the responses recorded in this cassette folder "
             "(`--record DIR`), in order; see docs/testing.md.",
        exists=True, file_okay=False)] = None,
) -> None:
    """Serve the emulated vendor APIs on HOST:PORT until interrupted."""
    from fallback_chain.cassette.format import CassetteError
    from fallback_chain.emulator.app import Emulator
    from fallback_chain.emulator.faults import FaultConfigError
    from fallback_chain.emulator.server import serve

    try:
        emu = Emulator(faults, api_keys=None if api_key == "*" else api_key, seed=seed,
                       admin_token=admin_token or None, replay=replay)
    except (FaultConfigError, CassetteError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    base = f"http://{host}:{port}"
    typer.echo(f"emulator on {base}  (OpenAI base_url {base}/v1; Gemini and Leonardo "
               f"base_url {base}; admin {base}/_emulator/log)", err=True)
    serve(emu, host=host, port=port, log_level=log_level)
