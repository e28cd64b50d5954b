"""Claims of the docs that no example shows, checked against the code (issue 26's list)."""

from __future__ import annotations

import re
from pathlib import Path

from fallback_chain import Chain
from fallback_chain.providers import FakeProvider
from fallback_chain.state.memory import MemoryState

ROOT = Path(__file__).resolve().parents[2]


def test_the_redis_variable_does_nothing_for_a_chain_built_in_python(monkeypatch):
    """README "Many workers" and docs/state.md: FALLBACK_CHAIN_REDIS_URL turns shared state on
    for config-built chains only; a plain Chain() stays in the process."""
    monkeypatch.setenv("FALLBACK_CHAIN_REDIS_URL", "redis://127.0.0.1:1/0")
    chain = Chain([FakeProvider()], log=False)
    try:
        assert isinstance(chain.state, MemoryState)
    finally:
        chain.close()


def test_the_config_variable_wins_over_the_current_folder(tmp_path, monkeypatch):
    """docs/config.md "Where it is found" and every --config help (find_config's order)."""
    from fallback_chain.config import find_config

    (tmp_path / "fallback-chain.toml").write_text("")
    named = tmp_path / "named.toml"
    named.write_text("")
    monkeypatch.setenv("FALLBACK_CHAIN_CONFIG", str(named))
    assert find_config(cwd=tmp_path) == named
    monkeypatch.delenv("FALLBACK_CHAIN_CONFIG")
    assert find_config(cwd=tmp_path) == tmp_path / "fallback-chain.toml"


def test_p95_hedging_counts_successful_calls_only():
    """The Policy docstring (and docs/simulate.md): p95 hedging starts after 20 successes;
    failed calls add no latency sample."""
    from fallback_chain import Policy
    from fallback_chain.walk import slot as slot_module

    assert slot_module._P95_MIN_SAMPLES == 20
    assert "20 successes are known" in re.sub(r"\s+", " ", Policy.__doc__ or "")
    policy = Policy(retries={"server_error": 0}, breaker_failures=100, backoff_initial_s=0)
    chain = Chain([FakeProvider("a", script=[500, 500, 500]), FakeProvider("b")],
                  policy=policy, log=False)
    try:
        for _ in range(3):
            chain.generate("a lighthouse")
        first, second = chain._slots
        assert (first.calls, len(first.latencies)) == (3, 0)
        assert (second.calls, len(second.latencies)) == (3, 3)
    finally:
        chain.close()


def test_the_commands_without_json_are_the_ones_the_readme_names():
    import typer.main

    from fallback_chain.cli import app

    readme = re.sub(r"\s+", " ", (ROOT / "README.md").read_text())
    without = []
    stack = [([], typer.main.get_command(app))]
    while stack:
        path, command = stack.pop()
        subs = getattr(command, "commands", None)
        if subs is not None:
            stack += [([*path, n], c) for n, c in subs.items()]
        elif not any("--json" in getattr(p, "opts", ()) for p in command.params):
            without.append(" ".join(path))
    claim = re.search(r"all but (.*?) have `--json`", readme)
    assert claim, "the README names the commands without --json"
    named = set(re.findall(r"`([a-z -]+)`", claim.group(1)))
    assert named == set(without)


def test_the_signatures_docs_config_md_gives_are_the_code_s():
    """docs/config.md "From Python": the parameters of load_config, find_config and
    Config.chain, as written in its table, are those of the code."""
    import inspect

    from fallback_chain.config import Config, find_config, load_config

    text = (ROOT / "docs" / "config.md").read_text()
    for name, function in (("load_config", load_config), ("find_config", find_config),
                           ("Config.chain", Config.chain)):
        m = re.search(rf"^\| `{re.escape(name)}\((?P<params>[^)]*)\)", text, flags=re.M)
        assert m, f"docs/config.md documents {name}"
        documented = [p.split("=")[0].strip() for p in m.group("params").split(",")
                      if p.strip() not in ("", "*")]
        actual = [p for p in inspect.signature(function).parameters if p != "self"]
        assert documented == actual, name
