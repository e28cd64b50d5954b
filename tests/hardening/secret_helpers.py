"""Helpers for the secret-hygiene tests (imported as ``secret_helpers``): the planted keys, the
failures the emulator is asked to produce, a leak finder, and collectors for every channel a
key could escape through (log records of every logger, exception texts, reprs, files).

What counts as a leak (the rule ``fallback_chain/secrets.py`` implements): the whole key or any
run of 8 or more of its characters. Vendors echo a rejected key as its first three and last
four characters (``sk-PLA***...c6e8``), which is allowed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

#: Planted through the environment (``OPENAI_API_KEY``...). Shaped like the real ones: OpenAI
#: ``sk-...``, Gemini ``AIza`` + 35 characters, Leonardo a UUID.
ENV_KEYS = {
    "openai": "sk-PLANTEDq7f3a9c2e41b8d6f0a5c3e7b9d1f2a4c6e8Vx",
    "gemini": "AIzaPLANTEDq9b8c7d6e5f4a3b2c1d0e9f8a7b6c5",
    "leonardo": "5e1f7c3a-0b9d-4c2e-8a7f-6d5c4b3a2e10",
}
#: Planted through constructors (``api_key=``) and the config's secrets file.
CTOR_KEYS = {
    "openai": "sk-CTORPLANTk0e4d8c2b6a1f9e3d7c5b0a8f4e2d6c1bXy",
    "gemini": "AIzaCTORPLANTk1a2b3c4d5e6f7a8b9c0d1e2f3a4",
    "leonardo": "c7d8e9f0-1a2b-4c3d-9e4f-5a6b7c8d9e0f",
}
ENV_VARS = {"openai": "OPENAI_API_KEY", "gemini": "GEMINI_API_KEY",
            "leonardo": "LEONARDO_API_KEY"}
VENDORS = ("gemini", "leonardo", "openai")
ALL_KEYS = (*ENV_KEYS.values(), *CTOR_KEYS.values())
FRAGMENT = 8

#: The failures the emulator can produce, by name: a fault for every vendor, or one per vendor.
#: ``{key}`` in a message is replaced by the key the client sends; ``echo_*`` are vendors
#: echoing a key (whole, cut short, or a piece of its middle) in an error message.
FAILURES: dict[str, Any] = {
    "rate_limited_429": "429",
    "server_error_500": "500",
    "overloaded_503": "503",
    "auth_fault": "auth",
    "forbidden_403": "permission",
    "out_of_quota": "quota",
    "timeout": {"fault": "hang", "hang_s": 3},
    "connection_reset": "reset",
    "connection_cut": "cut",
    "content_refusal": "policy",
    "malformed_truncated": "truncated",
    "malformed_html": "html",
    "malformed_image": {"openai": "bad_image", "gemini": "bad_base64",
                        "leonardo": "bad_image"},
    "vendor_specific_a": {"openai": "fewer_images", "gemini": "blocked_prompt",
                          "leonardo": "job_failed"},
    "vendor_specific_b": {"openai": "model_not_found", "gemini": "text_only",
                          "leonardo": "expired"},
    "echo_whole_key": {"fault": "500", "message": "Incorrect API key provided: {key}."},
    "echo_key_cut_short": {"fault": "401",
                           "message": "Incorrect API key provided: {key_head}..."},
    "echo_key_middle": {"fault": "500", "message": "quota of key ...{key_middle}... exceeded"},
}

#: What the echoing vendors' messages say around the key (to check that they got through).
ECHOED = ("Incorrect API key provided", "quota of key")


def fault_for(name: str, vendor: str, key: str) -> Any:
    """The fault token (or table) of failure ``name`` for ``vendor``, with ``key`` filled in."""
    spec = FAILURES[name]
    if isinstance(spec, dict) and vendor in spec:
        spec = spec[vendor]
    if isinstance(spec, dict) and "message" in spec:
        spec = {**spec, "message": spec["message"].format(
            key=key, key_head=key[:-5], key_middle=key[9:21])}
    return spec


def fragments(key: str) -> set[str]:
    return {key[i:i + FRAGMENT] for i in range(len(key) - FRAGMENT + 1)}


class LeakFinder:
    """Finds the planted keys, or any 8-character piece of one, in text or bytes."""

    def __init__(self, keys: Iterable[str] = ALL_KEYS) -> None:
        self.keys = tuple(keys)
        self._pieces = sorted({p for k in self.keys for p in fragments(k)})
        self._raw = [p.encode() for p in self._pieces]

    def find(self, data: str | bytes) -> list[str]:
        """The pieces of planted keys ``data`` holds (empty: no leak)."""
        if isinstance(data, str):
            return [p for p in self._pieces if p in data]
        return [p.decode() for p in self._raw if p in data]

    def leaks(self, channels: Mapping[str, str | bytes]) -> dict[str, list[str]]:
        """``{channel: pieces}`` for every channel that leaks."""
        found = {name: self.find(data) for name, data in channels.items()}
        return {name: pieces for name, pieces in found.items() if pieces}


# ------------------------------------------------------------------------------ channels

def exception_texts(exc: BaseException) -> str:
    """Everything an exception can show: ``str``, ``repr`` and the formatted traceback of it
    and of every exception chained to it (cause and context), attempts included."""
    parts: list[str] = ["".join(traceback.format_exception(exc))]
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += [str(current), repr(current), *[repr(a) for a in current.args]]
        for attempt in getattr(current, "attempts", ()) or ():
            parts += [repr(attempt), attempt.model_dump_json()]
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(VENDOR_SIDE):
            return
        self.lines.append(self.format(record))


#: Loggers of the emulated vendors' side (the server, not the client): not ours to check.
VENDOR_SIDE = ("uvicorn", "fallback_chain.emulator")
#: Loggers set to DEBUG explicitly (the SDKs log requests, and might log headers, there).
DEBUG_LOGGERS = ("", "fallback_chain", "fallback_chain.batch", "httpx", "httpcore", "httpx2",
                 "httpcore2", "openai", "openai._base_client", "google_genai",
                 "google_genai.models", "google_genai._api_client", "asyncio", "PIL")


@contextlib.contextmanager
def all_logs() -> Iterator[list[str]]:
    """Every log record of every logger at DEBUG (formatted, tracebacks included) while the
    block runs; yields the list the lines go to."""
    handler = _Collect()
    saved = {name: logging.getLogger(name).level for name in DEBUG_LOGGERS}
    root = logging.getLogger()
    root.addHandler(handler)
    for name in DEBUG_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def tree_bytes(*folders: Path) -> dict[str, bytes]:
    """Every file below ``folders`` (hidden and temporary ones too), by path."""
    files: dict[str, bytes] = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                files[str(path)] = path.read_bytes()
    return files


# ------------------------------------------------------------------------------ the CLI

#: Runs the command line with every logger at DEBUG on stderr (SDKs included).
_DEBUG_CLI = (
    "import logging, sys\n"
    "logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,\n"
    "                    format='%(name)s %(levelname)s %(message)s')\n"
    "from fallback_chain.cli import main\n"
    "sys.argv = ['fallback-chain', *sys.argv[1:]]\n"
    "main()\n")


def cli_env(keys: dict[str, str] | None = ENV_KEYS) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("FALLBACK_CHAIN_CONFIG", "FALLBACK_CHAIN_LEDGER", *ENV_VARS.values(),
                        "GOOGLE_API_KEY", "OPENAI_BASE_URL")}
    for vendor, key in (keys or {}).items():
        env[ENV_VARS[vendor]] = key
    env["PYTHONUNBUFFERED"] = "1"
    env["COLUMNS"] = "200"
    return env


def start_cli(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """``fallback-chain ARGS`` in ``cwd`` with every logger at DEBUG (not waited for)."""
    return subprocess.Popen([sys.executable, "-c", _DEBUG_CLI, *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def config_text(base_url: str, *, ledger: str = "ledger.db", secrets: str | None = None,
                timeout_s: float = 5.0) -> str:
    """A config whose chain is Gemini, Leonardo, OpenAI at the emulator ``base_url``."""
    head = f'[secrets]\nfile = "{secrets}"\n' if secrets else ""
    return f"""
default_chain = "main"
{head}
[chains.main]
attempt_timeout_s = {timeout_s}
ledger = "{ledger}"
policy = {{ backoff_initial_s = 0.01, wait_for_cooldown = false }}

[[chains.main.providers]]
vendor = "gemini"
model = "gemini-2.5-flash-image"
base_url = "{base_url}"

[[chains.main.providers]]
vendor = "leonardo"
base_url = "{base_url}"
options = {{ poll_initial_s = 0.01, poll_interval_s = 0.01 }}

[[chains.main.providers]]
vendor = "openai"
model = "gpt-image-2"
base_url = "{base_url}/v1"
"""

