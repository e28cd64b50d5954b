"""docs/simulate.md: its TOML and Python examples run, and the hedging study's conclusions
still hold on a shorter run of the same file."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from fallback_chain.simulate import parse_experiment, run_experiment


def _blocks(root: Path, lang: str) -> list[str]:
    text = (root / "docs/simulate.md").read_text()
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def test_every_toml_example_is_a_valid_experiment(root: Path) -> None:
    blocks = _blocks(root, "toml")
    assert len(blocks) == 2
    for block in blocks:
        parse_experiment(tomllib.loads(block))


def test_python_example_runs(root: Path) -> None:
    (code,) = _blocks(root, "python")
    namespace: dict[str, object] = {}
    exec(code.replace("10_000", "2_000").replace("print(", "(lambda *a: a)("), namespace)
    no_breaker, default = namespace["result"].results  # type: ignore[attr-defined]
    assert abs(no_breaker.served_share("second") - 0.3) < 0.05
    assert default.served_share("second") > 0.8  # the default breaker sends most to "second"


@pytest.fixture(scope="module")
def hedging(request: pytest.FixtureRequest) -> dict[str, object]:
    root = Path(__file__).resolve().parents[2]
    doc = tomllib.loads(_blocks(root, "toml")[1])
    doc["workload"]["duration"] = "3h"
    result = run_experiment(parse_experiment(doc))
    return {r.config: r for r in result.results}


def test_hedging_at_p95_cuts_the_tail_for_a_little_money(hedging: dict[str, object]) -> None:
    none, p95 = hedging["no hedging"], hedging["hedge at p95"]
    assert p95.latency_p99_s < 0.6 * none.latency_p99_s  # type: ignore[attr-defined]
    assert 1.0 < p95.cost_per_image_usd / none.cost_per_image_usd < 1.15  # type: ignore[attr-defined]


def test_shorter_delays_cost_steeply_more(hedging: dict[str, object]) -> None:
    costs = [hedging[n].cost_per_image_usd for n in  # type: ignore[attr-defined]
             ("hedge at p95", "hedge at 10 s", "hedge at 3 s")]
    assert costs == sorted(costs)
    assert costs[2] > 1.6 * hedging["no hedging"].cost_per_image_usd  # type: ignore[attr-defined]


def test_unbilled_cancels_make_hedging_nearly_free(hedging: dict[str, object]) -> None:
    free, billed = hedging["hedge at 10 s, cancels free"], hedging["hedge at 10 s"]
    none = hedging["no hedging"]
    assert free.latency_p99_s == billed.latency_p99_s  # type: ignore[attr-defined]
    assert free.cost_per_image_usd < 1.02 * none.cost_per_image_usd  # type: ignore[attr-defined]
