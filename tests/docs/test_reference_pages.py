"""The pages of docs/reference/ are what the code generates (regenerate: scripts/gen-reference),
and the facts they carry hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fallback_chain.reference import render_all
from fallback_chain.reference.__main__ import COMMAND, stale

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "reference"
PAGES = render_all()


def test_no_reference_page_drifts_from_the_code():
    wrong = stale(OUT)
    assert not wrong, (f"docs/reference/ differs from the code in {', '.join(wrong)}: "
                       f"run `{COMMAND}` and commit the pages")


@pytest.mark.parametrize("name", sorted(PAGES))
def test_every_page_is_linked_from_the_index(name):
    if name != "README.md":
        assert f"]({name})" in PAGES["README.md"]


def test_the_outcome_page_has_every_outcome_and_the_status_mapping():
    from fallback_chain import Outcome

    page = PAGES["outcomes.md"]
    for outcome in Outcome:
        assert f"| `{outcome.value}` |" in page
    for status, outcome in ((402, "quota_exhausted"), (408, "timeout"), (410, "not_found"),
                            (429, "rate_limited"), (503, "server_error")):
        assert f"| {status} | `{outcome}` |" in page


def test_every_policy_field_chain_keyword_and_vendor_is_listed_with_a_meaning():
    import dataclasses
    import inspect

    from fallback_chain import Chain, Policy, registry

    for f in dataclasses.fields(Policy):
        row = next(r for r in PAGES["policy.md"].splitlines() if r.startswith(f"| `{f.name}` |"))
        assert not row.endswith("|  |"), f"Policy.{f.name} has no meaning in its docstring"
    for name in inspect.signature(Chain.__init__).parameters:
        if name not in ("self", "providers"):
            row = next(r for r in PAGES["chain.md"].splitlines()
                       if r.startswith(f"| `{name}` |"))
            assert not row.endswith("|  |"), f"Chain's {name} has no meaning in its docstring"
    for vendor in registry.names():
        assert f"| `{vendor}` |" in PAGES["vendors.md"]
        assert f"## `{vendor}`:" in PAGES["adapters.md"]


def test_help_texts_keep_bracketed_words_and_name_the_config_rules_in_order():
    """Rich markup must not eat `[sim]`; `--config` help gives the discovery order of
    fallback_chain.config.find_config (the variable wins over ./fallback-chain.toml)."""
    import typer.main
    from typer.testing import CliRunner

    from fallback_chain.cli import app

    page = PAGES["cli.md"]
    assert "fallback-chain[sim]" in page
    runner = CliRunner()
    out = runner.invoke(app, ["simulate", "--help"], env={"COLUMNS": "200"}).output
    assert "fallback-chain[sim]" in out
    root = typer.main.get_command(app)
    helps = []
    stack = [root]
    while stack:
        command = stack.pop()
        stack += list(getattr(command, "commands", {}).values())
        helps += [p.help or "" for p in command.params if "--config" in getattr(p, "opts", ())]
    assert helps
    for text in helps:
        order = [m.group(0) for m in re.finditer(r"\$FALLBACK_CHAIN_CONFIG|fallback-chain\.toml",
                                                 text)]
        assert order[:1] == ["$FALLBACK_CHAIN_CONFIG"], text
