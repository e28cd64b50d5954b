"""``fallback-chain simulate`` through Typer's CliRunner, and the plot it draws."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from fallback_chain.cli.simulate import simulate as simulate_command
from fallback_chain.cost.ledger import Ledger
from fallback_chain.simulate import load_experiment, make_traffic, simulate

app = typer.Typer()
app.command("simulate")(simulate_command)


@app.callback()
def _root() -> None:
    """Mount point: a single command would otherwise become the app itself."""


runner = CliRunner()

SMALL = """
[experiment]
name = "small"
seed = 3

[workload]
start = "10:00"
duration = "20m"
rate_per_min = 12

[providers.a]
price_usd = 0.02
faults = {server_error = 0.2}
outages = [{start = "10:05", end = "10:10"}]

[providers.b]
price_usd = 0.06
latency = {p50 = 8, p95 = 20}

[[configurations]]
name = "a first"

[[configurations]]
name = "b first"
providers = ["b", "a"]
"""


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return path


def test_simulate_prints_tables_and_writes_every_output(small: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["simulate", str(small), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "a first" in result.stdout and "$/image" in result.stdout
    for name in ("results.csv", "timeline.csv", "results.json", "results.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = (out / "results.csv").read_text().splitlines()
    assert rows[0].startswith("config,requests,delivered,success_rate")
    assert [r.split(",")[0] for r in rows[1:]] == ["a first", "b first"]


def test_json_and_seed(small: Path, tmp_path: Path) -> None:
    outputs = []
    for seed in ("5", "5", "6"):
        result = runner.invoke(app, ["simulate", str(small), "--out", str(tmp_path / seed),
                                     "--seed", seed, "--json", "--no-plot"])
        assert result.exit_code == 0, result.output
        outputs.append(json.loads(result.stdout))
    assert outputs[0] == outputs[1] != outputs[2]
    first = outputs[0]["configurations"][0]
    assert first["config"] == "a first" and outputs[0]["seed"] == 5
    assert set(first["latency_s"]) == {"p50", "p95", "p99"}
    assert set(first["providers"]) == {"a", "b"}


def test_bad_experiment_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(SMALL.replace("price_usd = 0.02", "price_usd = \"cheap\""))
    result = runner.invoke(app, ["simulate", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "providers.a.price_usd: expected a number" in result.output


def test_missing_matplotlib_is_named(small: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "out"
    result = runner.invoke(app, ["simulate", str(small), "--out", str(out)])
    assert result.exit_code == 1
    assert "pip install 'fallback-chain[sim]'" in result.output
    assert (out / "results.csv").exists() and not (out / "results.png").exists()


def test_replay_from_the_command_line(small: Path, tmp_path: Path) -> None:
    exp = load_experiment(small)
    ledger_path = tmp_path / "ledger.db"
    with Ledger(ledger_path) as ledger:
        simulate(exp.configurations[0], exp.profiles, make_traffic(exp, 1), seed=1,
                 epoch=exp.epoch, start=exp.workload.start, bucket_s=300.0, on_event=ledger)
    out = tmp_path / "replayed"
    result = runner.invoke(app, ["simulate", str(small), "--replay", str(ledger_path),
                                 "--window", "5m", "--out", str(out), "--json", "--no-plot"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    names = [c["config"] for c in doc["configurations"]]
    assert names == ["recorded", "a first", "b first"]
    assert "replayed from the ledger" in doc["workload"]
    recorded, again = doc["configurations"][:2]
    assert again["requests"] == recorded["requests"]


def test_missing_ledger_is_a_clear_error(small: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["simulate", str(small), "--replay",
                                 str(tmp_path / "nope.db")])
    assert result.exit_code == 2
    assert "nope.db" in result.output
