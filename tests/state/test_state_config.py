"""Shared state from the config file: ``[state]`` or ``FALLBACK_CHAIN_REDIS_URL``."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from redis_helpers import free_port

from fallback_chain.config import ConfigError, ConfigWarning, load_config
from fallback_chain.state import RedisState

FAKES = """
[chains.blog]
providers = [{ vendor = "fake", name = "sick" }, { vendor = "fake", name = "ok" }]
policy = { breaker_failures = 1, retries = { server_error = 0 } }
"""


def load(tmp_path: Path, text: str):
    path = tmp_path / "fallback-chain.toml"
    path.write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        return load_config(path)


@pytest.fixture(autouse=True)
def _no_env_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FALLBACK_CHAIN_REDIS_URL", raising=False)


def test_without_state_each_chain_keeps_its_own(tmp_path: Path) -> None:
    config = load(tmp_path, FAKES)
    assert config.state() is None
    assert type(config.chain(ledger=False).state).__name__ == "MemoryState"


def test_the_state_table_names_redis(tmp_path: Path) -> None:
    config = load(tmp_path, '[state]\nurl = "redis://127.0.0.1:6390/2"\non_unavailable = "fail"\n'
                  'namespace = "acme"\n' + FAKES)
    state = config.state()
    assert isinstance(state, RedisState)
    assert (state.url, state.namespace, state.link.on_unavailable) == (
        "redis://127.0.0.1:6390/2", "acme", "fail")
    assert config.chain(ledger=False).state is state  # one backend per file


def test_the_environment_wins_and_may_hold_the_password(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FALLBACK_CHAIN_REDIS_URL", "redis://:s3cr3t-pw@127.0.0.1:6391/0")
    config = load(tmp_path, '[state]\nurl = "redis://127.0.0.1:6390/2"\n' + FAKES)
    state = config.state()
    assert isinstance(state, RedisState)
    assert state.url == "redis://:***@127.0.0.1:6391/0"
    assert "s3cr3t-pw" not in repr(config.chain(ledger=False))
    # and without any [state] table, the variable alone turns shared state on
    assert isinstance(load(tmp_path, FAKES).state(), RedisState)


@pytest.mark.parametrize(("state", "message"), [
    ('url = "http://127.0.0.1:6379"', "redis://"),
    ('url = "redis://:pw@127.0.0.1:6379/0"', "FALLBACK_CHAIN_REDIS_URL"),
    ('on_unavailable = "maybe"', "on_unavailable"),
    ('namespace = "a b"', "namespace"),
    ('urls = "redis://x"', "urls"),
])
def test_bad_state_tables_name_the_line(tmp_path: Path, state: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load(tmp_path, f"[state]\n{state}\n" + FAKES)
    assert "line 2" in str(info.value) or ":2" in str(info.value)
    if "pw@" in state:
        assert ":pw@" not in str(info.value)


def test_a_state_table_without_any_url_is_an_error(tmp_path: Path) -> None:
    config = load(tmp_path, '[state]\non_unavailable = "fail"\n' + FAKES)
    with pytest.raises(ConfigError, match="no Redis URL"):
        config.state()


@pytest.mark.redis
def test_two_workers_built_from_one_file_share_a_breaker(tmp_path: Path, redis_url: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FALLBACK_CHAIN_REDIS_URL", redis_url)

    async def go() -> list[str]:
        one, two = (load(tmp_path, FAKES).chain(ledger=False, log=False) for _ in range(2))
        one.providers[0].script([500])  # type: ignore[attr-defined]
        await one.agenerate("x")  # one failure opens the breaker (breaker_failures = 1)
        result = await two.agenerate("y")
        await one.aclose()
        await two.aclose()
        return [a.outcome.value for a in result.attempts]

    assert asyncio.run(go()) == ["breaker_open", "success"]


@pytest.mark.redis
@pytest.mark.parametrize("reachable", [True, False])
def test_check_reports_the_shared_state(tmp_path: Path, redis_url: str,
                                        reachable: bool) -> None:
    url = redis_url if reachable else f"redis://127.0.0.1:{free_port()}/0"
    path = tmp_path / "fallback-chain.toml"
    path.write_text(f'[state]\nurl = "{url}"\n' + FAKES)
    env = {k: v for k, v in os.environ.items()
           if k not in ("FALLBACK_CHAIN_REDIS_URL", "FALLBACK_CHAIN_CONFIG")}
    done = subprocess.run([sys.executable, "-m", "fallback_chain.cli", "check", "--json",
                           "--config", str(path)], capture_output=True, text=True, env=env,
                          timeout=60)
    doc = json.loads(done.stdout)
    state = doc["providers"][-1]
    assert (state["provider"], state["model"], state["ok"]) == ("shared state", url, reachable)
    assert done.returncode == (0 if reachable else 1)
    if not reachable:
        assert "unreachable" in state["detail"]
