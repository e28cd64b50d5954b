"""``--help`` stays fast: no vendor SDK, HTTP client, server or Pillow is imported, for the whole
CLI and for each of these commands' help; ``fallback-chain --help`` does not even load pydantic
(a command's own ``--help`` does: Typer >= 0.29 coerces parameters with it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import COMMANDS

HEAVY = {"openai", "google", "httpx", "httpx2", "starlette", "uvicorn", "PIL", "pydantic",
         "pydantic_core", "sqlite3"}
TYPER_OWN = {"pydantic", "pydantic_core"}
HERE = Path(__file__).resolve().parent


def _imported(code: str) -> tuple[set[str], str]:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True,
                          text=True, cwd=HERE, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    modules = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines()
               if line.startswith("import time:") and "|" in line}
    return modules, proc.stdout


def test_fallback_chain_help_imports_nothing_heavy():
    modules, out = _imported("import sys; sys.argv = ['fallback-chain', '--help']\n"
                             "from fallback_chain.cli import main\n"
                             "try:\n    main()\nexcept SystemExit:\n    pass")
    assert "Usage" in out
    assert not modules & HEAVY, sorted(modules & HEAVY)


@pytest.mark.parametrize("args", [["--help"], *[[c, "--help"] for c in COMMANDS]])
def test_help_of_these_commands_imports_nothing_heavy(args):
    modules, out = _imported(f"from cli_helpers import build_app\n"
                             f"try:\n    build_app()({args!r}, prog_name='fallback-chain')\n"
                             f"except SystemExit:\n    pass")
    assert "Usage: fallback-chain" in out
    heavy = HEAVY if len(args) == 1 else HEAVY - TYPER_OWN
    assert not modules & heavy, sorted(modules & heavy)


def test_the_installed_script_answers_help():
    script = Path(sys.executable).with_name("fallback-chain")
    proc = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "Usage" in proc.stdout
