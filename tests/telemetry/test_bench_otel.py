"""benchmarks/bench_otel.py measures what it says: each set-up is what its label claims."""

from __future__ import annotations

from benchmarks import bench_otel


def test_each_setup_is_what_it_claims_and_measures():
    chains = {}
    for label, setup in bench_otel.SETUPS.items():
        chain = chains[label] = bench_otel.build("429, 500->500, ok")
        exporter = setup(chain) if setup is not None else None
        if label in ("no exporter", "instrument(), no provider configured"):
            assert not chain.events  # the no-subscriber path
        else:
            assert exporter is not None and exporter.active and chain.events
    rows = bench_otel.measure(chains, 4, 20, 1)
    assert set(rows) == set(bench_otel.SETUPS)
    assert all(r["best µs/request"] > 0 for r in rows.values())


def test_the_fresh_interpreter_rows_run():
    rows = bench_otel._fresh("success", 1, 20, 1, 1)
    assert set(rows) == {bench_otel.FRESH_INSTALLED, bench_otel.FRESH_ABSENT}
