"""``estimate_batch`` and ``fallback-chain cost estimate``: best, expected and worst case."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from fallback_chain.cli import app
from fallback_chain.cost.batch import (
    BatchRequest,
    ChainStep,
    estimate_batch,
    parse_chain_spec,
    read_requests_csv,
)
from fallback_chain.request import ImageRequest

CHAIN = "gemini:gemini-2.5-flash-image,openai:gpt-image-1.5"
G, OAI = 0.039, 0.034  # per image: gemini 2.5 flash image; gpt-image-1.5 medium at 1024²


def test_parse_chain_spec():
    assert parse_chain_spec("gemini:gemini-2.5-flash-image, leonardo ,openai:gpt-image-1.5") == [
        ChainStep("gemini", "gemini-2.5-flash-image"), ChainStep("leonardo"),
        ChainStep("openai", "gpt-image-1.5")]
    with pytest.raises(ValueError, match="empty"):
        parse_chain_spec(" , ")


def test_closed_form():
    reqs = [BatchRequest("1024x1024", "standard", 1)] * 10
    est = estimate_batch(parse_chain_spec(CHAIN), reqs,
                         failure_rates={"gemini": 0.2, "openai:gpt-image-1.5": 0.1})
    assert est.requests == 10
    assert est.best_usd == pytest.approx(10 * G)
    assert est.worst_usd == pytest.approx(10 * (G + OAI))
    assert est.expected_usd == pytest.approx(10 * (0.8 * G + 0.2 * 0.9 * OAI))
    assert est.expected_undelivered == pytest.approx(10 * 0.2 * 0.1)
    assert [s.expected_calls for s in est.steps] == pytest.approx([10, 2])
    billed = estimate_batch(parse_chain_spec(CHAIN), reqs, failures_billed=0.5,
                            failure_rates={"gemini": 0.2, "openai": 0.1})
    assert billed.expected_usd == pytest.approx(
        10 * (G * (0.8 + 0.2 * 0.5) + 0.2 * OAI * (0.9 + 0.1 * 0.5)))


def test_no_failures_means_expected_equals_best():
    reqs = [ImageRequest(prompt="x", size="1024x1024", quality="final", n=2)]
    est = estimate_batch([("openai", "gpt-image-1.5"), ("gemini", None)], reqs)
    assert est.best_usd == est.expected_usd == pytest.approx(2 * 0.133)
    assert est.worst_usd == pytest.approx(2 * 0.133 + 2 * G)


def test_unpriced_providers_are_listed_and_rates_are_checked():
    est = estimate_batch([("openai", "gpt-image-2.6-sunburst"), ("gemini", None)],
                         [BatchRequest()] * 3)
    assert est.unpriced == ["openai:gpt-image-2.6-sunburst"]
    assert est.best_usd == 0 and est.worst_usd == pytest.approx(3 * G)
    with pytest.raises(ValueError, match="not in the chain"):
        estimate_batch([("gemini", None)], [], failure_rates={"gemeni": 0.1})
    with pytest.raises(ValueError, match="between 0 and 1"):
        estimate_batch([("gemini", None)], [], failure_rates={"gemini": 1.5})


def test_read_requests_csv(tmp_path):
    with_header = tmp_path / "a.csv"
    with_header.write_text('prompt,size,quality,n\n"a fox, red",1536x1024,final,2\nan owl,,,\n')
    assert read_requests_csv(with_header) == [BatchRequest("1536x1024", "final", 2),
                                              BatchRequest(None, None, 1)]
    plain = tmp_path / "b.csv"
    plain.write_text("a lighthouse\n\na harbour\n")
    assert read_requests_csv(plain) == [BatchRequest(), BatchRequest()]
    bad = tmp_path / "c.csv"
    bad.write_text("prompt,n\nx,two\n")
    with pytest.raises(ValueError, match="line 2"):
        read_requests_csv(bad)


def test_cli_estimate(tmp_path):
    csv = tmp_path / "prompts.csv"
    csv.write_text("prompt,size\n" + "".join(f"p{i},1024x1024\n" for i in range(10)))
    runner = CliRunner()
    result = runner.invoke(app, ["cost", "estimate", str(csv), "--providers", CHAIN,
                                 "--failure-rate", "gemini=0.2", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["best_usd"] == pytest.approx(10 * G)
    assert data["expected_usd"] == pytest.approx(10 * (0.8 * G + 0.2 * OAI))
    assert data["worst_usd"] == pytest.approx(10 * (G + OAI))
    table = runner.invoke(app, ["cost", "estimate", str(csv), "--providers", CHAIN + ",nobody:x"],
                          env={"COLUMNS": "160"})
    assert table.exit_code == 0, table.output
    assert "$0.3900" in table.output and "no price in the catalogue for nobody:x" in table.output
    bad = runner.invoke(app, ["cost", "estimate", str(csv), "--providers", CHAIN,
                              "--failure-rate", "gemini"])
    assert bad.exit_code == 2 and "PROVIDER=RATE" in bad.output


def test_cli_estimate_with_a_price_file(tmp_path):
    csv = tmp_path / "prompts.csv"
    csv.write_text("one prompt\n")
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"vendors": {"gemini": {"price_factor": 0.5}}}))
    result = CliRunner().invoke(app, ["cost", "estimate", str(csv), "--providers", "gemini",
                                      "--prices", str(prices), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["best_usd"] == pytest.approx(G / 2)
