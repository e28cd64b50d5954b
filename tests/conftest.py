"""Fixtures shared by every test folder.

``live`` is one real emulator server on a free loopback port per test module; ``server`` hands
it out reset (log, jobs, scripts) with ``emulator_faults`` applied. A folder overrides
``emulator_key`` or ``emulator_faults`` when it needs another key or other faults.
``emulator_process`` starts ``fallback-chain emulate`` in a process of its own (for tests whose
clients run in other processes, or that kill things).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fallback_chain.emulator import Emulator, serve_in_thread


@pytest.fixture(scope="module")
def emulator_key() -> str:
    return "test-key"


@pytest.fixture
def emulator_faults() -> dict[str, Any]:
    return {"leonardo": {"job_delay_s": 0.05}}


@pytest.fixture(scope="module")
def live(emulator_key: str) -> Iterator[tuple[Emulator, str]]:
    emulator = Emulator(api_keys=emulator_key)
    with serve_in_thread(emulator) as base_url:
        yield emulator, base_url


@pytest.fixture
def server(live: tuple[Emulator, str], emulator_faults: dict[str, Any]) -> tuple[Emulator, str]:
    emulator, base_url = live
    emulator.set_faults(emulator_faults)
    emulator.reset()
    return emulator, base_url


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """``write(text, name="fallback-chain.toml")``: dedent ``text`` into a file, return its path."""

    def _write(text: str, name: str = "fallback-chain.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return _write


@contextlib.contextmanager
def _emulate(faults: Path | None = None, key: str = "test-key") -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    extra = ["--faults", str(faults)] if faults is not None else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "fallback_chain.cli", "emulate", "--port", str(port), *extra,
         "--api-key", key, "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/_emulator/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                stderr = proc.stderr.read() if proc.stderr is not None else b""
                raise RuntimeError(f"emulator did not start: {stderr!r}")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def emulator_process() -> Callable[..., contextlib.AbstractContextManager[str]]:
    """``with emulator_process(faults_path=None, key="test-key") as url:`` runs
    ``fallback-chain emulate`` on a free loopback port in its own process."""
    return _emulate
