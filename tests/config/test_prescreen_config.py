"""The prompt pre-screen from the config file (``[[chains.NAME.prescreen]]``) and from the
batch command line (``--prescreen blocklist:FILE``, ``--prescreen moderation``): a flagged
prompt costs $0 and makes no image call (the emulator's log says so); the others are made."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fallback_chain.cli import app
from fallback_chain.config import load_config
from fallback_chain.config.emulated import Emulated
from fallback_chain.config.errors import ConfigError
from fallback_chain.demo import KEY
from fallback_chain.emulator import Emulator, serve_in_thread
from fallback_chain.prescreen import Blocklist, OpenAIModeration

BRIEFS = ('id,prompt\n'
          'ok,"a lighthouse at dusk, watercolour"\n'
          'bad,"a bowl of forbidden ramen"\n')
CONFIG = '''
[chains.main]
[[chains.main.providers]]
vendor = "openai"
model = "gpt-image-2"
[[chains.main.prescreen]]
kind = "blocklist"
file = "terms.txt"
'''


@pytest.fixture(autouse=True)
def _here(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FALLBACK_CHAIN_CONFIG", raising=False)
    monkeypatch.setenv("FALLBACK_CHAIN_LEDGER", str(tmp_path / "ledger.db"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "briefs.csv").write_text(BRIEFS)
    (tmp_path / "terms.txt").write_text("# terms we never send\nforbidden\n")


@pytest.fixture
def emulator() -> Iterator[tuple[Emulator, str]]:
    emu = Emulator(faults={"default": {"latency": {"dist": "fixed", "ms": 1}}}, api_keys=KEY)
    with serve_in_thread(emu) as url:
        yield emu, url


def batch(url: str, *args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(app, ["batch", "briefs.csv", "--out", "out", "--emulator", url,
                                      "--emulator-key", KEY, "--progress", "none",
                                      "--no-report", "--json", *args])
    assert result.stdout.strip(), result.stderr
    return result.exit_code, json.loads(result.stdout)


def _image_calls(emu: Emulator, prompt_part: str) -> int:
    return sum(1 for e in emu.log.entries() if e.endpoint != "moderate"
               and prompt_part in (e.prompt or ""))


def _check_refused(tmp_path: Path, emu: Emulator, code: int, summary: dict) -> None:
    assert code == 3 and summary["delivered"] == 1
    assert summary["failed_by_reason"] == {"content_policy": 1}
    assert _image_calls(emu, "forbidden") == 0 and _image_calls(emu, "lighthouse") >= 1
    line = next(json.loads(x) for x in (tmp_path / "out" / "manifest.jsonl").read_text()
                .splitlines() if '"bad"' in x)
    assert line["cost_usd"] == 0
    assert [a["provider"] for a in line["attempts"]] == ["moderation"]
    assert line["moderation"]["categories"] == ["blocklist:forbidden"]


def test_a_blocklist_in_the_config_file(tmp_path: Path, emulator: tuple[Emulator, str]) -> None:
    emu, url = emulator
    (tmp_path / "fc.toml").write_text(CONFIG)
    code, summary = batch(url, "--config", "fc.toml")
    _check_refused(tmp_path, emu, code, summary)


def test_a_blocklist_on_the_command_line(tmp_path: Path,
                                         emulator: tuple[Emulator, str]) -> None:
    emu, url = emulator
    code, summary = batch(url, "--prescreen", "blocklist:terms.txt")
    _check_refused(tmp_path, emu, code, summary)


def test_moderation_on_the_command_line_asks_the_emulator(
        tmp_path: Path, emulator: tuple[Emulator, str]) -> None:
    emu, url = emulator
    code, summary = batch(url, "--prescreen", "moderation")
    assert code == 0 and summary["delivered"] == 2
    assert emu.log.count(endpoint="moderate") == 2  # one screen per prompt, nothing flagged


@pytest.mark.parametrize(("spec", "message"), [
    ("blocklist:missing.txt", "cannot read missing.txt"),
    ("blocklist", "needs a file of terms"),
    ("moderation:maybe", "moderation:block"),
    ("vibes", "use 'moderation'"),
])
def test_a_bad_flag_is_refused_before_anything_runs(
        tmp_path: Path, emulator: tuple[Emulator, str], spec: str, message: str) -> None:
    emu, url = emulator
    code, summary = batch(url, "--prescreen", spec)
    assert code == 2 and message in summary["error"]
    assert not emu.log.entries()


def test_the_config_builds_both_kinds(tmp_path: Path) -> None:
    (tmp_path / "fc.toml").write_text(CONFIG + '''
[[chains.main.prescreen]]
kind = "moderation"
on_error = "block"
timeout_s = 2
[[chains.main.prescreen]]
kind = "blocklist"
terms = ["gore"]
''')
    with load_config(tmp_path / "fc.toml") as cfg:
        blocklist, moderation, terms = cfg.prescreen(
            emulated=Emulated("http://127.0.0.1:9", "k"))
    assert isinstance(blocklist, Blocklist) and blocklist.terms == ["forbidden"]
    assert isinstance(moderation, OpenAIModeration)
    assert (moderation.on_error, moderation.timeout_s) == ("block", 2)
    assert isinstance(terms, Blocklist) and terms.terms == ["gore"]


@pytest.mark.parametrize(("table", "message"), [
    ('kind = "blocklist"\nmodel = "x"', "a blocklist takes no model"),
    ('kind = "blocklist"', "needs terms"),
    ('kind = "moderation"\nterms = ["a"]', "moderation takes no terms"),
    ('kind = "moderation"\nkey_env = "AWS_SECRET_ACCESS_KEY"', "not an OpenAI key variable"),
    ('kind = "vibes"', "kind"),
])
def test_bad_prescreen_tables_are_refused(tmp_path: Path, table: str, message: str) -> None:
    (tmp_path / "fc.toml").write_text(CONFIG.replace('kind = "blocklist"\nfile = "terms.txt"',
                                                     table))
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "fc.toml")
