"""Experiment files: the example loads, bad input names the file and the key, workloads
draw the traffic they describe."""

from __future__ import annotations

import dataclasses
import random
import re
from pathlib import Path

import pytest

from fallback_chain.simulate import (
    ExperimentError,
    Workload,
    load_experiment,
    run_experiment,
)
from fallback_chain.simulate import experiment as experiment_module
from fallback_chain.simulate.timeparse import duration, time_of_day
from fallback_chain.simulate.workload import RatePiece, parse_workload

MINIMAL = """
[workload]
duration = "10m"
rate_per_min = 6

[providers.a]
price_usd = 0.02

[providers.b]
price_usd = 0.05

[[configurations]]
name = "a then b"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.toml"
    path.write_text(text)
    return path


def test_example_experiment_loads(root: Path) -> None:
    exp = load_experiment(root / "examples/experiment.toml")
    assert [c.name for c in exp.configurations][:4] == [
        "given order", "cost order", "no retries", "hedge at 2 s"]
    gemini = exp.profiles["gemini"]
    assert gemini.images_per_minute == 10
    assert gemini.outages[0].start == time_of_day("10:00", "t")
    assert gemini.outages[0].end == time_of_day("10:20", "t")
    assert exp.configurations[1].order == "cost"
    assert exp.configurations[0].policy["attempt_timeout_s"] == 60  # the base policy


def test_minimal_experiment_uses_every_profile_in_order(tmp_path: Path) -> None:
    exp = load_experiment(_write(tmp_path, MINIMAL))
    assert list(exp.configurations[0].providers) == ["a", "b"]
    result = run_experiment(exp)
    assert result.results[0].requests > 0


@pytest.mark.parametrize(("change", "message"), [
    (("price_usd = 0.02", "price_usd = -1"), "providers.a.price_usd: must be >= 0"),
    (("price_usd = 0.02", "faults = {server_eror = 0.1}"),
     "providers.a.faults.server_eror: 'server_eror' is not a provider outcome"),
    (("price_usd = 0.02", "faults = {server_error = 0.8, timeout = 0.5}"),
     "add up to 1.300"),
    (('name = "a then b"', 'name = "x"\npolicy = {retrys = 1}'),
     r"configurations.x.policy: unknown Policy field\(s\) \['retrys'\]"),
    (('name = "a then b"', 'name = "x"\npolicy = {attempt_timeout_s = 0}'),
     "configurations.x.policy: attempt_timeout_s must be > 0"),
    (('name = "a then b"', 'name = "x"\nproviders = ["a", "c"]'),
     r"configurations.x.providers: no profile for \['c'\]"),
    (('duration = "10m"', 'duration = "ten minutes"'), "workload.duration"),
    (("[providers.a]", "[providers.a]\nlatency = {p50 = 5, p95 = 2}"),
     "providers.a.latency.p95: must be >= p50"),
    (("[providers.a]", "[providers.a]\noutages = [{start = \"25:99\", end = \"10:20\"}]"),
     r"providers.a.outages\[0\].start"),
])
def test_errors_name_the_file_and_the_key(tmp_path: Path, change: tuple[str, str],
                                          message: str) -> None:
    path = _write(tmp_path, MINIMAL.replace(*change, 1))
    with pytest.raises(ExperimentError, match=message) as info:
        load_experiment(path)
    assert re.match(rf"{re.escape(str(path))}:(\d+): ", str(info.value))


def test_not_toml_is_reported_with_its_line(tmp_path: Path) -> None:
    with pytest.raises(ExperimentError, match=r"exp.toml:2: not valid TOML: "):
        load_experiment(_write(tmp_path, "[workload]\nduration = \n"))


def test_hedging_configuration_is_skipped_on_a_library_without_hedging(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = MINIMAL + '\n[[configurations]]\nname = "hedged"\npolicy = {hedge_delay_s = 2.0}\n'
    known = experiment_module.policy_fields() - set(experiment_module.HEDGING_FIELDS)
    monkeypatch.setattr(experiment_module, "policy_fields", lambda: known)
    result = run_experiment(load_experiment(_write(tmp_path, text)))
    assert [r.config for r in result.results] == ["a then b"]
    assert "hedge_delay_s" in result.skipped["hedged"]


def test_base_policy_merges_with_each_configuration(tmp_path: Path) -> None:
    text = MINIMAL.replace("[workload]", "[policy]\nretries = {server_error = 2}\n"
                           "providers = {b = {attempt_timeout_s = 30}}\n\n[workload]")
    text += ('\n[[configurations]]\nname = "only a"\nproviders = ["a"]\n'
             'policy = {retries = {timeout = 1}}\n')
    exp = load_experiment(_write(tmp_path, text))
    only_a = exp.configurations[1]
    assert only_a.policy["retries"] == {"server_error": 2, "timeout": 1}
    assert only_a.policy["providers"] == {}  # b is not in this chain
    assert exp.configurations[0].build_policy().for_provider("b").attempt_timeout_s == 30


def test_time_and_duration_forms() -> None:
    assert time_of_day("10:20", "t") == 37_200.0
    assert time_of_day("10:20:30", "t") == 37_230.0
    assert duration("1h30m", "d") == 5400.0
    assert duration("250ms", "d") == 0.25
    with pytest.raises(ExperimentError):
        duration("soon", "d")


def test_poisson_arrivals_follow_a_rate_that_changes_by_time_of_day() -> None:
    workload = parse_workload({"start": "09:00", "duration": "3h", "rate_schedule": [
        {"from": "09:00", "per_min": 10}, {"from": "10:00", "per_min": 60},
        {"from": "11:00", "per_min": 0}]})
    arrivals = workload.arrival_times(random.Random(3))
    per_hour = [sum(1 for t in arrivals if h * 3600 <= t < (h + 1) * 3600) for h in (9, 10, 11)]
    assert per_hour[0] == pytest.approx(600, rel=0.1)
    assert per_hour[1] == pytest.approx(3600, rel=0.05)
    assert per_hour[2] == 0
    assert arrivals == sorted(arrivals)


def test_request_cap_and_even_arrivals() -> None:
    workload = Workload(start=0.0, end=None, requests=5, arrivals="even",
                        schedule=(RatePiece(0.0, 30.0),))
    assert workload.arrival_times(random.Random(0)) == [2.0, 4.0, 6.0, 8.0, 10.0]


def test_mix_draws_kinds_by_weight() -> None:
    workload = parse_workload({"mix": [{"n": 1, "weight": 3}, {"n": 4, "size": "16:9"}]})
    kinds = workload.kinds(20_000, random.Random(0))
    assert kinds.count(1) / len(kinds) == pytest.approx(0.25, abs=0.01)
    with pytest.raises(ExperimentError, match=r"workload.mix\[0\]: .*n: must be between"):
        parse_workload({"mix": [{"n": 11}]})


def test_with_seed_changes_only_the_seed(root: Path) -> None:
    exp = load_experiment(root / "examples/experiment.toml")
    assert dataclasses.replace(exp, seed=3) == exp.with_seed(3)


def test_errors_name_the_line_and_list_every_structural_problem(tmp_path: Path) -> None:
    text = MINIMAL.replace("[workload]", '[experiment]\nseed = "x"\ndate = "2026-13-01"\n\n'
                           "[workload]", 1) + 'order = "random"\n'
    path = _write(tmp_path, text)
    with pytest.raises(ExperimentError) as info:
        load_experiment(path)
    assert str(info.value).splitlines() == [
        f"{path}:3: experiment.seed: must be a valid integer (got 'x')",
        f"{path}:4: experiment.date: expected YYYY-MM-DD (got '2026-13-01')",
        f"{path}:18: configurations[0].order: must be 'given' or 'cost' (got 'random')"]
    path = _write(tmp_path, MINIMAL.replace('name = "a then b"', 'name = "x"\ncolour = 1'))
    with pytest.raises(ExperimentError, match=rf"{re.escape(str(path))}:14: configurations\[0\]"
                                              r"\.colour: unknown key; valid keys here: budget"):
        load_experiment(path)


@pytest.mark.parametrize(("spec", "message"), [
    ({"colour": 1}, "workload.colour: unknown key; valid keys here: arrivals"),
    ({"rate_schedule": []}, "workload.rate_schedule: must have at least 1 element"),
    ({"rate_schedule": [{"from": "09:00"}]}, r"workload.rate_schedule\[0\].per_min: required"),
    ({"rate_per_min": 3, "rate_schedule": [{"from": "09:00", "per_min": 1}]},
     "workload: give rate_per_min or rate_schedule, not both"),
    ({"arrivals": "burst"}, "workload.arrivals: must be 'poisson' or 'even' .got 'burst'."),
    ({"requests": "5"}, "workload.requests: must be a valid integer .got '5'."),
    ({"start": [9]}, r"workload.start: expected text such as '10:00' or '20m', or a number"),
])
def test_workload_table_errors_name_the_key(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ExperimentError, match=message):
        parse_workload(spec)


@pytest.mark.parametrize(("spec", "message"), [
    ({"colour": 1}, "providers.a.colour: unknown key; valid keys here: billed_on_failure"),
    ({"price_usd": "0.02"}, r"providers.a.price_usd: expected a number \(got '0.02'\)"),
    ({"faults": {"timeout": True}}, r"providers.a.faults.timeout: expected a number"),
    ({"max_n": 1.5}, r"providers.a.max_n: must be a valid integer \(got 1.5\)"),
    ({"outages": [{"start": "10:00"}]}, r"providers.a.outages\[0\].end: required"),
    ({"outages": [{"start": "10:00", "end": "11:00", "rate": 2}]},
     r"providers.a.outages\[0\].rate: must be less than or equal to 1 \(got 2\)"),
    ({"outages": [{"start": "10:00", "end": "11:00", "outcome": "timeout", "faults": {}}]},
     r"providers.a.outages\[0\]: give either outcome or faults, not both"),
])
def test_profile_table_errors_name_the_key(spec: dict[str, object], message: str) -> None:
    from fallback_chain.simulate import parse_profile

    with pytest.raises(ExperimentError, match=message):
        parse_profile("a", spec)
