"""``generate --record DIR`` and ``batch --record DIR`` write cassettes; ``emulate --replay
DIR`` serves them again, so the same command reproduces the same attempts offline."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from cli_helpers import PLANTED, no_secret_in

from fallback_chain.cassette import load_cassettes

CONFIG = '''
[chains.main]
[[chains.main.providers]]
vendor = "gemini"
base_url = "{url}"
[[chains.main.providers]]
vendor = "leonardo"
base_url = "{url}"
options = {{ poll_initial_s = 0.02, poll_interval_s = 0.02 }}
[[chains.main.providers]]
vendor = "openai"
base_url = "{url}/v1"
'''


@contextlib.contextmanager
def _replaying(folder: Path) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "fallback_chain.cli", "emulate", "--port", str(port),
         "--replay", str(folder), "--log-level", "warning"],
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
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _attempts(doc: dict) -> list[tuple]:
    return [(a["provider"], a["outcome"], a.get("status_code"), a.get("cost_usd"))
            for a in doc["attempts"]]


def test_generate_records_and_emulate_replays_the_same_attempts(run, write, server, tmp_path,
                                                                 monkeypatch):
    emulator, url = server
    emulator.set_faults({"gemini": {"script": "429"}, "leonardo": {"script": "500,500"}})
    for name in ("GEMINI_API_KEY", "LEONARDO_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.setenv(name, PLANTED)
    write(CONFIG.format(url=url))
    recorded = run.json("generate", "a lighthouse", "--out", "out", "--record", "cas")
    cassettes = load_cassettes(tmp_path / "cas")
    assert [(c.vendor, c.endpoint) for c in cassettes][:4] == [
        ("gemini", "generate"), ("leonardo", "submit"), ("leonardo", "submit"),
        ("openai", "generate")]
    no_secret_in(tmp_path / "cas")
    assert b"a lighthouse" not in b"".join(p.read_bytes() for p in (tmp_path / "cas").iterdir())

    with _replaying(tmp_path / "cas") as replay_url:
        write(CONFIG.format(url=replay_url))
        replayed = run.json("generate", "a lighthouse", "--out", "again")
    assert _attempts(replayed) == _attempts(recorded)
    assert [(a["provider"], a["outcome"]) for a in recorded["attempts"]] == [
        ("gemini", "rate_limited"), ("leonardo", "server_error"), ("leonardo", "server_error"),
        ("openai", "success")]


def test_batch_records_every_exchange(run, tmp_path):
    (tmp_path / "in.csv").write_text("prompt\na red kite\na paper boat\n")
    run("batch", "in.csv", "--emulated", "--out", "out", "--record", "cas", "--progress",
        "none", code=None)
    cassettes = load_cassettes(tmp_path / "cas")
    assert len(cassettes) >= 2
    assert {c.vendor for c in cassettes} <= {"gemini", "leonardo", "openai"}
