"""Fixtures for the compare tests: fake providers on virtual time, one real emulator server
per module, and the ``compare`` command mounted on a Typer app of its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import typer
from compare_helpers import FAST, KEY

from fallback_chain.cli.compare import compare as compare_command
from fallback_chain.emulator import Emulator, serve_in_thread


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No config file or key from the developer's machine leaks into a test."""
    monkeypatch.chdir(tmp_path)
    for name in ("FALLBACK_CHAIN_CONFIG", "OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY",
                 "LEONARDO_API_KEY", "FALLBACK_CHAIN_PRICES"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[Emulator, str]]:
    emulator = Emulator(FAST, api_keys=KEY)
    with serve_in_thread(emulator) as base_url:
        yield emulator, base_url


@pytest.fixture
def server(live: tuple[Emulator, str]) -> tuple[Emulator, str]:
    emulator, base_url = live
    emulator.set_faults(FAST)
    emulator.reset()
    return emulator, base_url


@pytest.fixture
def app() -> typer.Typer:
    """The command as ``fallback-chain`` mounts it (a group, so ``compare`` is a subcommand)."""
    cli = typer.Typer(add_completion=False)

    @cli.callback()
    def _root() -> None:
        """Test root."""

    cli.command("compare")(compare_command)
    return cli
