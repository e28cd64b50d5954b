"""Issue 27, finding 9: the emulator's admin API reads no files and answers only its own.

* A ``POST /_emulator/faults`` body ending in ``.json``/``.toml`` is data, never a path: the
  answer is the same 400 whether the named file exists or not, and shows none of its content.
* Without an admin token, only requests naming a loopback host are served (DNS rebinding
  names another host) and never a cross-origin one (a web page's ``fetch``).
* With a token, every admin request must carry ``X-Emulator-Token``.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import httpx2
import pytest

from fallback_chain.emulator import Emulator

SECRET_FILE = '[openai]\nscript = "503"\nleaked_value = "s3cret-from-disk"\n'


def _client(emu: Emulator, host: str = "127.0.0.1:8700") -> httpx2.Client:
    return httpx2.Client(transport=emu.httpx2_sync_transport(), base_url=f"http://{host}")


async def _post(emu: Emulator, body: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emu),  # type: ignore[arg-type]
                                 base_url="http://127.0.0.1:8700") as http:
        return await http.post("/_emulator/faults", content=body, headers=headers)


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_a_body_naming_a_file_is_not_read(tmp_path: Path, suffix: str) -> None:
    import asyncio

    existing = tmp_path / f"faults{suffix}"
    existing.write_text(SECRET_FILE if suffix == ".toml" else '{"leaked_value": "s3cret"}')
    missing = tmp_path / f"missing{suffix}"
    emu = Emulator()
    there = asyncio.run(_post(emu, str(existing)))
    absent = asyncio.run(_post(emu, str(missing)))
    assert there.status_code == absent.status_code == 400
    assert "s3cret" not in there.text and "leaked_value" not in there.text
    assert "cannot read" not in there.text + absent.text
    assert emu.state.faults.config.raw == {}


def test_only_loopback_hosts_are_served_without_a_token() -> None:
    emu = Emulator()
    for host in ("127.0.0.1:8700", "localhost:8700", "[::1]:8700", "emulator.test"):
        with _client(emu, host) as http:
            assert http.get("/_emulator/log").status_code == 200, host
            assert http.post("/_emulator/faults",
                             json={"openai": {"script": "503"}}).status_code == 200
    for host in ("attacker.example:8700", "192.168.1.20:8700", "127.0.0.1.nip.io:8700"):
        with _client(emu, host) as http:
            assert http.post("/_emulator/reset").status_code == 403, host
            assert http.get("/_emulator/log").status_code == 403, host
            assert http.get("/_emulator/health").status_code == 200  # tells nothing


def test_a_cross_origin_request_is_refused() -> None:
    emu = Emulator()
    with _client(emu) as http:
        posted = http.post("/_emulator/faults", content='[openai]\nscript = "503"\n',
                           headers={"Origin": "https://evil.example",
                                    "Content-Type": "text/plain"})
        assert posted.status_code == 403
        assert emu.state.faults.config.raw == {}
        assert http.get("/_emulator/log", headers={"Origin": "null"}).status_code == 403
        same = http.get("/_emulator/log", headers={"Origin": "http://127.0.0.1:8700"})
        assert same.status_code == 200


def test_a_token_is_required_when_set() -> None:
    emu = Emulator(admin_token="adm-token-123")
    with _client(emu) as http:
        assert http.post("/_emulator/reset").status_code == 401
        assert http.post("/_emulator/reset",
                         headers={"X-Emulator-Token": "wrong"}).status_code == 401
        assert http.post("/_emulator/reset",
                         headers={"X-Emulator-Token": "adm-token-123"}).status_code == 200
    with _client(emu, "emulator.lan:8700") as http:  # a token makes other hosts usable
        assert http.get("/_emulator/log",
                        headers={"X-Emulator-Token": "adm-token-123"}).status_code == 200
