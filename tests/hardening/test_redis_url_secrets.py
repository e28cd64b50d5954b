"""Issue 27, finding 7: every credential form a Redis URL allows is masked, and refused in a
config file. redis-py takes credentials from the userinfo (``user:pw@``, ``:pw@``, a lone
``word@``) and from the query string (``?password=``, ``?ssl_password=``...); ``check`` (table
and JSON), the outage warning and ``repr(RedisState)`` must show none of them."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from fallback_chain.config import ConfigError, load_config
from fallback_chain.state import RedisState
from fallback_chain.state.redis.link import Link
from fallback_chain.state.redis.urls import safe_url, secrets_in

SECRET = "Q9-hunter2-redis-pw"
FAKES = '\n[chains.blog]\nproviders = [{ vendor = "fake" }]\n'


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(("url", "shown"), [
    (f"redis://127.0.0.1:6379/0?password={SECRET}", "redis://127.0.0.1:6379/0?password=***"),
    (f"redis://h/0?db=1&Password={SECRET}&x=y", "redis://h/0?db=1&Password=***&x=y"),
    (f"rediss://h/0?ssl_password={SECRET}", "rediss://h/0?ssl_password=***"),
    (f"redis://u:{SECRET}@h:1/0", "redis://u:***@h:1/0"),
    (f"redis://:{SECRET}@h/0", "redis://:***@h/0"),
    (f"redis://{SECRET}@h/0", "redis://***@h/0"),
    ("redis://:Q9%2Dhunter2%2Dredis%2Dpw@h/0", "redis://:***@h/0"),
    (f"unix://:{SECRET}@/run/redis.sock?db=0", "unix://:***@/run/redis.sock?db=0"),
    (f"unix:///run/redis.sock?db=0&password={SECRET}", "unix:///run/redis.sock?db=0&password=***"),
    ("redis://h:6379/0?db=2", "redis://h:6379/0?db=2"),
])
def test_every_credential_form_is_masked(url: str, shown: str) -> None:
    assert safe_url(url) == shown
    if "hunter2" in url:
        assert SECRET in secrets_in(url)


def test_repr_and_the_outage_warning_mask_a_query_password(
        caplog: pytest.LogCaptureFixture) -> None:
    url = f"redis://127.0.0.1:{_port()}/0?password={SECRET}"
    state = RedisState(url)
    assert SECRET not in repr(state) and SECRET not in state.url

    class Down(OSError):
        pass

    link = Link(url, client_factory=lambda: None)  # type: ignore[arg-type,return-value]

    async def remote() -> int:
        raise Down(f"cannot reach {url}")

    async def local() -> int:
        return 1

    with caplog.at_level(logging.WARNING, logger="fallback_chain.state"):
        assert asyncio.run(link.call("a test", remote, local, admits=False)) == 1
    assert "unreachable" in caplog.text
    assert SECRET not in caplog.text


@pytest.mark.parametrize("url", [f"redis://127.0.0.1:6379/0?password={SECRET}",
                                 f"rediss://h/0?ssl_password={SECRET}"])
def test_a_config_file_refuses_a_query_credential(tmp_path: Path, url: str) -> None:
    path = tmp_path / "fallback-chain.toml"
    path.write_text(f'[state]\nurl = "{url}"\n' + FAKES)
    with pytest.raises(ConfigError, match="FALLBACK_CHAIN_REDIS_URL") as info:
        load_config(path)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize("as_json", [True, False])
def test_check_masks_a_query_password(tmp_path: Path, as_json: bool) -> None:
    path = tmp_path / "fallback-chain.toml"
    path.write_text(FAKES)
    env = {k: v for k, v in os.environ.items() if k != "FALLBACK_CHAIN_CONFIG"}
    env["FALLBACK_CHAIN_REDIS_URL"] = f"redis://127.0.0.1:{_port()}/0?password={SECRET}"
    done = subprocess.run([sys.executable, "-m", "fallback_chain.cli", "check",
                           *(["--json"] if as_json else []), "--config", str(path)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert "shared state" in done.stdout, done.stdout + done.stderr
    assert "password=***" in done.stdout
    assert SECRET not in done.stdout + done.stderr
