"""Percentiles and the image "spread" measure."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from fallback_chain.compare import image_spread, percentile
from fallback_chain.compare.stats import difference, signature
from fallback_chain.imaging import placeholder_image


def _png(colour, size=(64, 48), mode="RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, colour).save(out, format="PNG")
    return out.getvalue()


def test_percentile_interpolates_between_ranks():
    assert percentile([], 50) is None
    assert percentile([7.0], 95) == 7.0
    assert percentile([1, 2, 3, 4, 10], 50) == 3
    assert percentile([1, 2, 3, 4, 10], 95) == pytest.approx(8.8)
    assert percentile([4, 1, 3, 2], 50) == pytest.approx(2.5)  # order does not matter
    assert percentile([1, 2], 0) == 1 and percentile([1, 2], 100) == 2
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1.0], 101)


def test_spread_runs_from_identical_to_black_and_white():
    black, white = _png((0, 0, 0)), _png((255, 255, 255))
    assert image_spread([black]) is None and image_spread([]) is None
    assert image_spread([black, black, black]) == 0.0
    assert image_spread([black, white]) == pytest.approx(1.0)
    # three images, pairs: (b,b)=0, (b,w)=1, (b,w)=1
    assert image_spread([black, black, white]) == pytest.approx(2 / 3)
    grey = _png((128, 128, 128))
    assert image_spread([black, grey]) == pytest.approx(128 / 255, abs=0.01)


def test_spread_ignores_format_and_size_but_not_content():
    a = placeholder_image(256, 256, seed=1)
    a_jpeg = placeholder_image(256, 256, seed=1, fmt="jpeg")
    a_wide = placeholder_image(512, 512, seed=1)
    b = placeholder_image(256, 256, seed=2)
    same = image_spread([a, a_jpeg, a_wide])
    other = image_spread([a, b])
    assert same is not None and other is not None
    assert same < 0.05 < other


def test_signature_and_difference():
    sig = signature(_png((10, 20, 30), mode="RGB"))
    assert len(sig) == 32 * 32
    assert signature(_png((10, 20, 30, 0), mode="RGBA")) is not None
    assert difference(sig, sig) == 0.0
    with pytest.raises(ValueError, match="equal length"):
        difference(sig, sig[:10])
