"""The batch benchmark runs in ``--quick`` mode, its virtual-time rows included: the batch
engine hands file I/O to threads, which the virtual-time loop waits for without moving its
clock (it used to stop with ``SimulationDeadlock``)."""

from __future__ import annotations

from benchmarks import bench_batch


def test_batch_quick_runs_every_case() -> None:
    result = bench_batch.run(quick=True)
    rows = {row["case"]: row for row in result["rows"]}
    virtual = rows["rate-limited, virtual time, 30+20+10 images/min"]
    control = rows["rate-limited, virtual time, 30+20+10 images/min, WITHOUT the client-side "
                   "limiter (control)"]
    for row in (virtual, control, rows["rate-limited, real time, 30+20+10 images/s (60x)"],
                *(r for case, r in rows.items() if case.startswith("throughput"))):
        assert row["delivered"] == row["items"] and row.get("failed", 0) == 0, row
    # Virtual time is exact: the client-side limiter keeps every call under the vendors'
    # limits, and the control row (no limiter) meets 429s.
    assert virtual["rate-limited calls"].startswith("0 ")
    assert virtual["items/s"] <= virtual["bound items/s"] * 1.01
    assert control["calls"] > control["items"]
    assert [r["items"] for r in result["rows"] if r["case"].startswith("memory")] == [200, 600]


def test_the_virtual_rows_are_reproducible() -> None:
    first = bench_batch._rate_limited(60, virtual=True)
    second = bench_batch._rate_limited(60, virtual=True)
    for row in (first, second):
        row.pop("wall s")
    assert first == second
