"""Same experiment and seed: the same bytes; another seed: other results."""

from __future__ import annotations

from pathlib import Path

from fallback_chain.simulate import load_experiment, run_experiment, summary_csv, timeline_csv


def _csvs(path: Path, seed: int | None = None) -> tuple[str, str]:
    result = run_experiment(load_experiment(path), seed=seed)
    return summary_csv(result), timeline_csv(result)


def test_same_seed_gives_identical_csv_bytes(root: Path) -> None:
    first = _csvs(root / "examples/experiment.toml")
    second = _csvs(root / "examples/experiment.toml")
    assert first[0].encode() == second[0].encode()
    assert first[1].encode() == second[1].encode()
    assert first[0].count("\n") >= 5  # a header and the configurations


def test_another_seed_gives_other_results(root: Path) -> None:
    seven = _csvs(root / "examples/experiment.toml", seed=7)
    eight = _csvs(root / "examples/experiment.toml", seed=8)
    assert seven[0] != eight[0]
    assert seven[1] != eight[1]


def test_results_do_not_depend_on_string_hashing(root: Path, tmp_path: Path) -> None:
    """A fresh interpreter with another PYTHONHASHSEED writes the same CSV."""
    import os
    import subprocess
    import sys

    code = ("import sys; from fallback_chain.simulate import load_experiment, run_experiment, "
            "summary_csv; sys.stdout.write(summary_csv(run_experiment(load_experiment("
            f"{str(root / 'examples/experiment.toml')!r}))))")
    outputs = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        outputs.add(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                   text=True, check=True, env=env, cwd=root).stdout)
    assert len(outputs) == 1
    assert outputs == {_csvs(root / "examples/experiment.toml")[0]}
