"""Prometheus metrics for the length of a run: ``serve_metrics`` and ``--metrics-port`` of
``generate`` and ``batch`` (scraped over loopback while the run lasts)."""

from __future__ import annotations

import importlib
import json
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fallback_chain import Chain
from fallback_chain.providers import FakeProvider
from fallback_chain.telemetry.prometheus import serve_metrics

FAKES = '''
default_chain = "main"
[chains.main]
storage = "images"
[[chains.main.providers]]
vendor = "fake"
name = "first"
options = { script = [429], price_usd = 0.02 }
[[chains.main.providers]]
vendor = "fake"
name = "second"
options = { price_usd = 0.03 }
'''


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as reply:
        return reply.read().decode()


def _value(text: str, name: str, **labels: str) -> float:
    """The sample ``name{...}`` whose labels include ``labels``."""
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} {labels} in:\n{text}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_metrics_exposes_the_chains_metrics_while_the_block_runs():
    chain = Chain([FakeProvider("a", script=[429]), FakeProvider("b", price_usd=0.03)],
                  log=False)
    with serve_metrics(chain, 0) as url:
        assert url is not None and url.startswith("http://127.0.0.1:")
        result = chain.generate("a lighthouse")
        text = _scrape(url)
    attempts = "fallback_chain_attempts_total"
    assert _value(text, attempts, fallback_chain_provider="a",
                  fallback_chain_outcome="rate_limited") == 1
    assert _value(text, attempts, fallback_chain_provider="b",
                  fallback_chain_outcome="success") == 1
    assert _value(text, "fallback_chain_cost_USD_total", fallback_chain_provider="b") == (
        pytest.approx(result.cost_usd))
    assert _value(text, "fallback_chain_images_total", fallback_chain_provider="b") == 1
    assert _value(text, "fallback_chain_request_duration_seconds_count",
                  fallback_chain_status="delivered") == 1
    with pytest.raises(urllib.error.URLError):
        _scrape(url)  # the server is gone with the run
    assert not chain.events  # and our subscriber with it


def test_no_port_serves_nothing_and_imports_nothing():
    chain = Chain([FakeProvider("a")], log=False)
    with serve_metrics(chain, None) as url:
        assert url is None
        assert not chain.events


@pytest.fixture
def cli_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("FALLBACK_CHAIN_CONFIG", "FALLBACK_CHAIN_LEDGER", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fallback-chain.toml").write_text(FAKES)
    return tmp_path


def _scraping_run(monkeypatch: pytest.MonkeyPatch, module: Any, port: int,
                  scraped: list[str]) -> None:
    """Make the command's ``_run`` scrape the metrics right after the run, while the server
    is still up (it stops when the command ends)."""
    real = module._run

    def run_then_scrape(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        scraped.append(_scrape(f"http://127.0.0.1:{port}/metrics"))
        return out

    monkeypatch.setattr(module, "_run", run_then_scrape)


def test_generate_metrics_port(cli_folder: Path, monkeypatch: pytest.MonkeyPatch):
    from fallback_chain.cli import app

    module = importlib.import_module("fallback_chain.cli.generate")  # not the function

    port, scraped = _free_port(), []
    _scraping_run(monkeypatch, module, port, scraped)
    result = CliRunner().invoke(app, ["generate", "a red fox", "--json", "--metrics-port",
                                      str(port)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert f"metrics at http://127.0.0.1:{port}/metrics" in result.stderr
    (text,) = scraped
    assert _value(text, "fallback_chain_attempts_total", fallback_chain_provider="first",
                  fallback_chain_outcome="rate_limited") == 1
    cost = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line.startswith("fallback_chain_cost_USD_total{")]
    assert sum(cost) == pytest.approx(doc["cost_usd"])


def test_batch_metrics_port(cli_folder: Path, monkeypatch: pytest.MonkeyPatch):
    from fallback_chain.cli import app

    module = importlib.import_module("fallback_chain.cli.batch")

    (cli_folder / "in.csv").write_text("id,prompt\nx,a lighthouse\ny,a harbour\n")
    port, scraped = _free_port(), []
    _scraping_run(monkeypatch, module, port, scraped)
    result = CliRunner().invoke(app, ["batch", "in.csv", "--out", "out", "--json",
                                      "--progress", "none", "--metrics-port", str(port)])
    assert result.exit_code == 0, result.output
    (text,) = scraped
    assert _value(text, "fallback_chain_requests_total", fallback_chain_status="delivered") == 2
    assert _value(text, "fallback_chain_images_total", fallback_chain_provider="second") == 2


def test_a_busy_port_is_a_clear_error(cli_folder: Path):
    from fallback_chain.cli import app

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ["generate", "x", "--metrics-port", str(port)])
    assert result.exit_code == 2
    assert "--metrics-port" in result.output and "in use" in result.output
