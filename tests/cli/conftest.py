"""Fixtures for the CLI tests: a clean environment and working folder, the app, a runner that
also checks no secret leaked, and one loopback emulator for the module that asks for it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import KEY_VARS, PLANTED, build_app
from typer.testing import CliRunner, Result


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in KEY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")  # wide tables: assertions see whole cells


class Run:
    """``run(*args)``: invoke the CLI; ``run.json(*args)``: invoke with --json and parse."""

    def __init__(self) -> None:
        self.app = build_app()
        self.runner = CliRunner()

    def __call__(self, *args: str, code: int | None = 0) -> Result:
        result = self.runner.invoke(self.app, list(args))
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert PLANTED not in result.output
        if code is not None:
            assert result.exit_code == code, result.output
        return result

    def json(self, *args: str, code: int | None = 0) -> Any:
        result = self(*args, "--json", code=code)
        return json.loads(result.stdout)


@pytest.fixture
def run() -> Run:
    return Run()


@pytest.fixture(scope="module")
def emulator_key() -> str:
    return PLANTED  # the emulator's key is the planted secret that must never be printed
