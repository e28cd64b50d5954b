"""Replay: a ledger recorded by one configuration, replayed under others."""

from __future__ import annotations

from pathlib import Path

import pytest
from sim_helpers import config, experiment

from fallback_chain.cost.ledger import Ledger
from fallback_chain.outcome import Outcome
from fallback_chain.simulate import (
    LogNormal,
    Outage,
    ProviderProfile,
    make_traffic,
    read_ledger,
    replay_ledger,
    simulate,
)
from fallback_chain.simulate.replay import RECORDED, profiles_from_recording

EXPERIMENT = """
[experiment]
timeline_bucket = "10m"

[providers.backup]
price_usd = 0.2
latency = 3.0

[[configurations]]
name = "as recorded"
providers = ["gemini", "openai"]

[[configurations]]
name = "openai first"
providers = ["openai", "gemini"]

[[configurations]]
name = "with backup"
providers = ["gemini", "backup"]
"""


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """One hour of a gemini/openai chain with a gemini outage 00:20-00:30, in a ledger."""
    down = Outage(1200.0, 1800.0, {Outcome.SERVER_ERROR: 1.0})
    gemini = ProviderProfile("gemini", price_usd=0.04, latency=LogNormal(5.0, 10.0),
                             faults={Outcome.SERVER_ERROR: 0.1, Outcome.TIMEOUT: 0.02},
                             outages=(down,))
    openai = ProviderProfile("openai", price_usd=0.08, latency=LogNormal(12.0, 20.0))
    chain = config("production", ["gemini", "openai"], attempt_timeout_s=30)
    exp = experiment([gemini, openai], [chain], end=3600.0, per_min=40, bucket_s=600.0)
    path = tmp_path_factory.mktemp("ledger") / "ledger.db"
    with Ledger(path) as ledger:
        result = simulate(chain, exp.profiles, make_traffic(exp, 1), seed=1, epoch=exp.epoch,
                          start=0.0, bucket_s=600.0, on_event=ledger)
    return path, result


def test_recording_reads_requests_and_their_arrivals(recorded: tuple[Path, object]) -> None:
    path, result = recorded
    recording = read_ledger(path)
    assert len(recording) == result.requests  # type: ignore[attr-defined]
    assert recording.arrivals == sorted(recording.arrivals)
    assert recording.day.isoformat() == "2026-01-01"
    assert set(recording.providers) == {"gemini", "openai"}


def test_profiles_carry_the_observed_behaviour(recorded: tuple[Path, object]) -> None:
    profiles = profiles_from_recording(read_ledger(recorded[0]), window_s=600.0)
    gemini = profiles["gemini"]
    assert gemini.price_usd == pytest.approx(0.04)
    assert Outcome.SERVER_ERROR in gemini.faults and Outcome.TIMEOUT in gemini.faults
    assert gemini.latency.quantile(0.5) == pytest.approx(5.0, rel=0.1)
    outage = next(o for o in gemini.outages if o.start == 1200.0)
    assert outage.faults[Outcome.SERVER_ERROR] > 0.8  # the window that was down
    # openai never failed, but its slowest answers passed the 30 s attempt timeout
    assert set(profiles["openai"].faults) == {Outcome.TIMEOUT}
    assert profiles["openai"].faults[Outcome.TIMEOUT] < 0.01


def test_replay_reproduces_the_recording_and_prices_other_configurations(
        recorded: tuple[Path, object], tmp_path: Path) -> None:
    path, original = recorded
    exp_file = tmp_path / "replay.toml"
    exp_file.write_text(EXPERIMENT)
    result = replay_ledger(path, exp_file, window_s=600.0)
    names = [r.config for r in result.results]
    assert names == [RECORDED, "as recorded", "openai first", "with backup"]

    baseline = result.by_name(RECORDED)  # the ledger, measured like a simulation
    assert baseline.requests == original.requests  # type: ignore[attr-defined]
    assert baseline.delivered == original.delivered  # type: ignore[attr-defined]
    assert baseline.calls == original.calls  # type: ignore[attr-defined]
    assert {p: baseline.served[p] for p in ("gemini", "openai")} == original.served  # type: ignore[attr-defined]
    assert baseline.spend_usd == pytest.approx(original.spend_usd)  # type: ignore[attr-defined]

    again = result.by_name("as recorded")  # same chain on the observed behaviour
    assert again.requests == baseline.requests
    assert again.cost_per_image_usd == pytest.approx(baseline.cost_per_image_usd, rel=0.05)
    assert again.served_share("gemini") == pytest.approx(baseline.served_share("gemini"),
                                                         abs=0.03)
    in_outage = [t for t in again.timeline if 1200.0 <= t.start < 1800.0]
    assert in_outage and all(t.served["openai"] / t.delivered > 0.8 for t in in_outage)

    flipped = result.by_name("openai first")
    assert flipped.served_share("openai") > 0.95
    assert flipped.cost_per_image_usd == pytest.approx(0.08, rel=0.02)
    assert result.by_name("with backup").served["backup"] > 0  # a profile from the file
