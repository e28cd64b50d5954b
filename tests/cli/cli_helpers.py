"""Shared by the CLI tests (imported as ``cli_helpers``): the app under test and constants."""

from __future__ import annotations

from pathlib import Path

import typer

#: A distinctive key: it must never appear in any output, file or ledger.
PLANTED = "sk-PLANTED-do-not-print-4b7e19c2d8a0"
KEY_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "LEONARDO_API_KEY", "OPENAI_API_KEY",
            "OPENAI_BASE_URL", "FALLBACK_CHAIN_CONFIG", "FALLBACK_CHAIN_PRICES",
            "FALLBACK_CHAIN_LEDGER")
COMMANDS = ("generate", "providers", "check", "demo")


def build_app() -> typer.Typer:
    """``fallback_chain.cli.app`` once these commands are registered there; until then an app
    registering them exactly as proposed for ``fallback_chain/cli/__init__.py``."""
    from fallback_chain.cli import app

    if set(COMMANDS) <= {c.name for c in app.registered_commands}:
        return app
    from fallback_chain.cli.check import check
    from fallback_chain.cli.demo import demo
    from fallback_chain.cli.generate import generate
    from fallback_chain.cli.providers_cmd import providers_command

    local = typer.Typer(name="fallback-chain", no_args_is_help=True, add_completion=False)

    @local.callback()
    def _root() -> None:
        """Image generation across several providers with a fallback chain."""

    local.command("generate")(generate)
    local.command("providers")(providers_command)
    local.command("check")(check)
    local.command("demo")(demo)
    return local


def no_secret_in(folder: Path) -> None:
    """Assert the planted key is in no file under ``folder`` (images, sidecars, ledgers)."""
    for path in folder.rglob("*"):
        if path.is_file():
            assert PLANTED.encode() not in path.read_bytes(), path
