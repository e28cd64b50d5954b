"""docs/cost.md, "Quotas": the Python example runs and prints what the page says; the config
example loads into the same ``Quotas``; the CLI takes the tenant and reports spend by it."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

from typer.testing import CliRunner

from fallback_chain.config import load_config

ROOT = Path(__file__).resolve().parents[2]
DOCS = (ROOT / "docs" / "cost.md").read_text()
SECTION = DOCS.split("## 8. Quotas", 1)[1]


def test_the_python_example_runs():
    code = re.search(r"```python\n(.*?)```", SECTION, flags=re.S)
    assert code is not None
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code[1], "docs/cost.md", "exec"), {})
    assert out.getvalue().splitlines() == ["user alice daily_usd", "fake"]


def test_the_config_example_loads(tmp_path):
    toml = re.search(r"```toml\n(.*?)```", SECTION, flags=re.S)
    assert toml is not None
    path = tmp_path / "fallback-chain.toml"
    path.write_text('[chains.main]\nproviders = [{ vendor = "fake" }]\n\n' + toml[1])
    config = load_config(path)
    quotas = config.quotas()
    assert quotas is not None
    assert quotas.limit_for("user", "bob").daily_images == 100  # type: ignore[union-attr]
    assert quotas.limit_for("user", "alice").daily_usd == 0.05  # type: ignore[union-attr]
    assert quotas.limit_for("project", "acme").monthly_images == 20000  # type: ignore[union-attr]
    assert quotas.limit_for("project", "other").monthly_images == 5000  # type: ignore[union-attr]
    chain = config.chain("main", ledger=False, log=False)
    assert chain.quotas is not None
    assert chain.quotas.limit_for("user", "alice") == quotas.limit_for("user", "alice")
    chain.close()
    config.close()


def test_generate_and_batch_take_the_tenant_and_the_report_splits_by_it(tmp_path, monkeypatch):
    from fallback_chain.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    (tmp_path / "fallback-chain.toml").write_text(
        '[chains.main]\nproviders = [{ vendor = "fake", options = { price_usd = 0.02 } }]\n'
        'ledger = "spend.db"\n\n[quotas.per_user]\ndaily_images = 1\n\n'
        '[quotas.users.alice]\ndaily_images = 0\n')
    runner = CliRunner()
    done = runner.invoke(app, ["generate", "a cat", "--user", "alice", "--out", "img"])
    assert done.exit_code != 0
    assert "alice" in done.output and "daily_images" in done.output, done.output
    done = runner.invoke(app, ["generate", "a cat", "--user", "bob", "--out", "img"])
    assert done.exit_code == 0, done.output
    # one batch process: carol's second row is over her 1 image a day; rows without a user
    # column are dave's (--user)
    (tmp_path / "rows.csv").write_text("prompt,user\na dog,bob\na dog,carol\na cow,carol\n"
                                       "a dog,\n")
    done = runner.invoke(app, ["batch", "rows.csv", "--out", "out", "--user", "dave",
                               "--progress", "none"])
    assert done.exit_code == 1, done.output
    done = runner.invoke(app, ["cost", "report", "--by", "user", "--json"])
    assert done.exit_code == 0, done.output
    rows = {r["key"]: r for r in json.loads(done.output)["sections"]["user"]}
    assert {k: r["delivered"] for k, r in rows.items()} == {
        "alice": 0, "bob": 2, "carol": 1, "dave": 1}
    assert rows["alice"]["calls"] == 0  # refused before anything was sent
    assert round(rows["bob"]["spent_usd"], 4) == 0.04
    assert round(rows["carol"]["spent_usd"], 4) == 0.02
