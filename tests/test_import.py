"""Importing the library stays light: no vendor SDK, no pybreaker (it probes for redis)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("openai", "google", "httpx2", "httpx", "PIL", "redis", "pybreaker", "litellm",
         "starlette", "uvicorn", "typer", "rich")


def _imported(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True,
                         text=True, check=True).stderr
    return {line.split("|")[-1].strip().split(".")[0] for line in out.splitlines()
            if line.startswith("import time:") and "|" in line}


@pytest.mark.parametrize("code", [
    "import fallback_chain",
    "import providers",
    "from fallback_chain import Chain, ImageRequest, Policy, ChainResult, Attempt, Outcome",
    "from providers import FakeProvider",
])
def test_no_vendor_sdk_on_import(code):
    loaded = _imported(code)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_plain_import_does_not_even_load_pydantic():
    assert "pydantic" not in _imported("import fallback_chain")
