"""The verification benchmark's pieces run and measure what they say (small sizes, fast)."""

from __future__ import annotations

import pytest

from benchmarks import bench_verify
from fallback_chain.imaging import inspect_image, placeholder_image
from fallback_chain.photo_like import photo_like_png
from fallback_chain.png_inflate import PngDataError


def test_rechunk_keeps_the_image_and_changes_only_the_layout() -> None:
    single = photo_like_png(96, 64, idat_size=None)
    chunked = bench_verify.rechunk(single, 1000)
    assert chunked.count(b"IDAT") > 5 and single.count(b"IDAT") == 1
    assert inspect_image(chunked) == inspect_image(single)
    assert bench_verify.rechunk(chunked, None) == single


def test_the_previous_algorithm_gives_the_same_verdicts() -> None:
    good = photo_like_png(96, 64, idat_size=None)
    bench_verify.previous_check(good)
    ihdr = good.index(b"IHDR")
    lying = good[:ihdr + 4] + (97).to_bytes(4, "big") + good[ihdr + 8:]  # width 97
    with pytest.raises(PngDataError):
        bench_verify.previous_check(lying)


def test_in_flight_reports_lag_and_cpu() -> None:
    row = bench_verify.in_flight(placeholder_image(64, 64), 20)
    assert set(row) == {"wall s", "lag p99 ms", "lag max ms", "CPU µs/request"}
    assert row["wall s"] >= bench_verify.LATENCY_S


def test_ours_and_the_hand_written_fallback_both_run() -> None:
    ours, handwritten, ratio = bench_verify._ours_vs_handwritten(photo_like_png(320, 200), 2)
    assert ours > 0 and handwritten > 0
    assert ratio == pytest.approx(ours / handwritten, rel=1.0)  # a median of per-round ratios
