"""What a new user tripped on (issue 14, section 4), command by command: ``generate``,
``cost``, ``simulate --help``, ``check``, the demo, and readable tables in 80 columns."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table

from fallback_chain.richtable import print_table

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "fallback-chain.toml"
FAKE_CONFIG = """
default_chain = "main"
[chains.main]
ledger = "books/ledger.db"
[[chains.main.providers]]
vendor = "fake"
"""


# ------------------------------------------------------------------------------ item 2

def test_generate_emulated_works_without_a_config_file_like_batch_and_compare(run, tmp_path):
    doc = run.json("generate", "a red fox in snow", "--emulated", "--out", "o", "--n", "2")
    assert doc["ok"] is True and doc["emulated"] is True and doc["chain"] == "demo"
    assert doc["provider"] in ("gemini", "leonardo", "openai")
    files = sorted(p.name for p in (tmp_path / "o").iterdir())
    rid = doc["request_id"]
    # item 15: several images are ID~1, ID~2 as in batch
    images = [f for f in files if not f.endswith(".json")]
    ext = Path(images[0]).suffix
    assert images == [f"{rid}~1{ext}", f"{rid}~2{ext}"] and f"{rid}.json" in files


def test_generate_emulated_human_output_names_provider_and_model_one_way(run):
    out = run("generate", "a lighthouse", "--emulated", "--out", "o").stdout
    assert re.search(r"delivered by gemini:gemini-2\.5-flash-image in", out), out
    assert "gemini/" not in out and "(gemini-2.5-flash-image)" not in out


# ------------------------------------------------------------------------------ item 6

def test_the_example_config_writes_nothing_into_the_checkout():
    from fallback_chain.config import load_config

    with pytest.warns(Warning, match="secrets.env does not exist"):
        config = load_config(EXAMPLE)
    with config:
        for name in config.chain_names:
            for path in (config.storage(name), config.ledger_path(name)):
                if path is not None:
                    assert ROOT not in Path(path).resolve().parents, path


def test_emulated_runs_do_not_warn_about_the_secrets_file(run, tmp_path):
    config = tmp_path / "fc.toml"
    config.write_text(FAKE_CONFIG.replace('default_chain = "main"', 'default_chain = "main"\n'
                                          '[secrets]\nfile = "nowhere/secrets.env"').replace(
        'vendor = "fake"', 'vendor = "openai"\nmodel = "gpt-image-2"'))
    emulated = run("generate", "x", "--config", str(config), "--emulated", "--out", "o")
    assert "secrets" not in emulated.stderr
    real = run("generate", "x", "--config", str(config), "--out", "o", code=None)
    assert "secrets.env does not exist" in real.stderr  # still said when keys are read


# ------------------------------------------------------------------------------ item 7

def test_emulated_generate_writes_the_emulated_ledger_and_cost_report_finds_it(run, tmp_path):
    run("generate", "a red fox", "--emulated", "--out", "o")
    assert (tmp_path / "fallback-chain-emulated-ledger.db").is_file()
    report = run.json("cost", "report", "--emulated")
    assert report["total"]["delivered"] == 1 and report["total"]["calls"] >= 1
    plain = run("cost", "report", "--by", "provider")  # no real ledger yet: the emulated one
    assert "reading the --emulated runs' ledger" in plain.stderr
    assert "Cost report for fallback-chain-emulated-ledger.db" in plain.stdout


def test_cost_report_reads_the_config_files_ledger(run, tmp_path):
    (tmp_path / "fallback-chain.toml").write_text(FAKE_CONFIG)
    run("generate", "a red fox", "--out", "o")  # a real (fake-vendor) run: the config's ledger
    assert (tmp_path / "books" / "ledger.db").is_file()
    report = run.json("cost", "report")
    assert report["total"]["delivered"] == 1
    assert run("cost", "report").stdout.startswith(
        f"Cost report for {tmp_path / 'books' / 'ledger.db'}")


# ------------------------------------------------------------------------------ items 8, 9

@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.csv"
    path.write_text("prompt,size\n" + "".join(f"p{i},1024x1024\n" for i in range(10)))
    return path


def test_cost_estimate_takes_providers_and_chain_means_a_config_chain(run, prompts, tmp_path):
    listed = run.json("cost", "estimate", str(prompts), "--providers", "fake")
    (tmp_path / "fallback-chain.toml").write_text(FAKE_CONFIG)
    named = run.json("cost", "estimate", str(prompts), "--chain", "main")
    assert [s["label"] for s in named["steps"]] == [s["label"] for s in listed["steps"]]
    both = run("cost", "estimate", str(prompts), "--providers", "fake", "--chain", "main",
               code=2)
    assert "give one" in both.stderr
    unknown = run("cost", "estimate", str(prompts), "--chain", "nope", code=2)
    assert "nope" in unknown.stderr


def test_cost_estimate_explains_expected_below_no_failures(run, prompts):
    out = run("cost", "estimate", str(prompts), "--providers",
              "openai:gpt-image-2,gemini:gemini-2.5-flash-image",
              "--failure-rate", "openai=0.5").stdout
    doc = run.json("cost", "estimate", str(prompts), "--providers",
                   "openai:gpt-image-2,gemini:gemini-2.5-flash-image",
                   "--failure-rate", "openai=0.5")
    assert doc["expected_usd"] < doc["best_usd"]  # the case that confused
    header = next(line for line in out.splitlines() if "provider" in line)
    assert header.index("expected") < header.index("no failures") < header.index("worst case")
    assert "best" not in header
    assert "expected is below no failures: failed calls are not billed" in out


def test_cost_estimate_help_uses_current_models_and_a_shut_down_model_warns(run, prompts):
    text = run("cost", "estimate", "--help").stdout
    assert "gpt-image-2" in text and "gemini-3.1-flash-image" in text
    assert "gpt-image-1.5" not in text and "gemini-2.5-flash-image" not in text
    retired = run("cost", "estimate", str(prompts), "--providers", "openai:dall-e-3")
    assert "dall-e-3' was shut down" in retired.stderr
    doc = run.json("cost", "estimate", str(prompts), "--providers", "openai:dall-e-3")
    assert any("shut down" in w for w in doc["warnings"])
    current = run.json("cost", "estimate", str(prompts), "--providers", "openai:gpt-image-2")
    assert current["warnings"] == []


# ------------------------------------------------------------------------------ item 10

def test_help_names_extras_that_exist(run):
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"])
    text = run("simulate", "--help").stdout
    assert "pip install 'fallback-chain[sim]'" in text
    for command in ("generate", "batch", "compare", "check", "providers", "simulate",
                    "emulate", "demo"):
        for named in re.findall(r"fallback-chain\[([a-z0-9,]+)\]", run(command, "--help").stdout):
            assert set(named.split(",")) <= extras, (command, named)


# ------------------------------------------------------------------------------ item 13

def test_tables_never_cut_a_value_in_a_narrow_console():
    wide = Table(title="per provider")
    for col in ("provider", "calls", "delivered", "failed", "rate-limited", "spent",
                "not delivered", "p50", "p95"):
        wide.add_column(col)
    wide.add_row("openai:gpt-image-2", "11", "7", "4", "3", "$1,234.5678", "$0.0387",
                 "0.18s", "0.24s")
    narrow = Console(width=80, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    print_table(narrow, wide)
    text = narrow.export_text()
    assert "…" not in text
    for value in ("openai:gpt-image-2", "$1,234.5678", "$0.0387", "rate-limited: 3",
                  "not delivered: $0.0387"):
        assert value in text
    assert max(len(line) for line in text.splitlines()) <= 80

    fits = Table(title="small")
    fits.add_column("provider")
    fits.add_column("note")
    fits.add_row("gemini", "a long sentence that may wrap between its words but never be cut")
    box = Console(width=40, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    print_table(box, fits)
    out = box.export_text()
    assert "…" not in out and "┃ provider" in out  # still a table, the prose wrapped
    assert " ".join(out.split()).count("never be cut") == 1


@pytest.mark.parametrize("args", [
    ("cost", "report", "--emulated"),
    ("cost", "estimate", "PROMPTS", "--providers",
     "gemini:gemini-3.1-flash-image,leonardo,openai:gpt-image-2", "--failure-rate",
     "gemini=0.2"),
])
def test_commands_are_readable_at_80_columns_and_piped(run, monkeypatch, prompts, args):
    run("generate", "a red fox", "--emulated", "--out", "o")
    monkeypatch.setenv("COLUMNS", "80")  # the runner's output is not a terminal: piped
    out = run(*[str(prompts) if a == "PROMPTS" else a for a in args]).stdout
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 80


def test_generate_at_80_columns_cuts_nothing(run, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    out = run("generate", "a red fox", "--emulated", "--out", "o").stdout
    assert "…" not in out and "$0." in out


# ------------------------------------------------------------------------------ item 14

def test_a_leonardo_jpeg_is_recorded_as_jpeg_when_png_was_asked(run, tmp_path):
    config = tmp_path / "leo.toml"
    config.write_text('default_chain = "main"\n[chains.main]\n[[chains.main.providers]]\n'
                      'vendor = "leonardo"\n'
                      'options = { poll_initial_s = 0.05, poll_interval_s = 0.05 }\n')
    doc = run.json("generate", "a red fox", "--config", str(config), "--emulated",
                   "--format", "png", "--out", "o")
    image = Path(doc["images"][0]["path"])
    assert image.suffix == ".jpg" and image.read_bytes()[:3] == b"\xff\xd8\xff"
    sidecar = json.loads(Path(doc["sidecar"]).read_text())
    assert sidecar["output_format_requested"] == "png"
    assert sidecar["output_format_delivered"] == "jpeg"
    assert sidecar["images"][0]["mime_type"] == "image/jpeg"
    assert "output_format" not in sidecar


# ------------------------------------------------------------------------------ item 15

def test_check_names_providers_as_attempts_do(run, tmp_path):
    config = tmp_path / "fc.toml"
    config.write_text(FAKE_CONFIG)
    doc = run.json("check", "--config", str(config))
    assert [r["provider"] for r in doc["providers"]] == ["fake"]


# ------------------------------------------------------------------------------ item 5

def test_the_two_demos_write_to_different_folders():
    from fallback_chain.cli.demo import DEFAULT_OUT as CLI_OUT
    from fallback_chain.demo import DEFAULT_OUT

    script = (ROOT / "scripts" / "demo").read_text()
    assert "--out demo-out" in script
    assert DEFAULT_OUT == CLI_OUT == Path("demo-requests-out")
    readme = (ROOT / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `fallback-chain demo"))
    assert "single-request" not in row and "eight briefs one after another" in row
    assert "demo-requests-out" in row
