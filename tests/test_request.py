"""ImageRequest validation: every bad input names the field and what is wrong."""

from __future__ import annotations

import pytest

from fallback_chain import ImageRequest
from fallback_chain.errors import RequestValidationError
from fallback_chain.imaging import placeholder_image

PNG = placeholder_image(64, 64, seed=1)
PNG_ALPHA = placeholder_image(64, 64, seed=2, alpha=True)


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"prompt": ""}, "prompt", "must not be empty"),
    ({"prompt": " \n\t"}, "prompt", "must not be empty"),
    ({"prompt": "x" * 100_000}, "prompt", "100,000 characters"),
    ({"prompt": "x", "n": 0}, "n", "between 1 and 10 (got 0)"),
    ({"prompt": "x", "n": 11}, "n", "between 1 and 10 (got 11)"),
    ({"prompt": "x", "size": "1024*768"}, "size", "is not a size; use 'WxH'"),
    ({"prompt": "x", "size": "big"}, "size", "is not a size"),
    ({"prompt": "x", "size": "10x10"}, "size", "out of range"),
    ({"prompt": "x", "size": "99999x1024"}, "size", "out of range"),
    ({"prompt": "x", "size": "0:9"}, "size", "out of range"),
    ({"prompt": "x", "quality": "hd"}, "quality", "one of draft, standard, final (got 'hd')"),
    ({"prompt": "x", "output_format": "bmp"}, "output_format", "got 'bmp'"),
    ({"prompt": "x", "background": "transparent", "output_format": "jpeg"}, "",
     "needs output_format 'png' or 'webp'"),
    ({"prompt": "x", "seed": -1}, "seed", "between 0 and"),
    ({"prompt": "x", "images": [b"not an image"]}, "images", "not a usable image"),
    ({"prompt": "x", "images": [PNG[:-20]]}, "images", "not a usable image"),
    ({"prompt": "x", "images": [b"\x89PNG\r\n\x1a\n" + b"\0" * (60 * 2**20)]}, "images",
     "60.0 MB; the limit is 50 MB"),
    ({"prompt": "x", "mask": PNG_ALPHA}, "", "a mask needs at least one image"),
    ({"prompt": "x", "images": [PNG], "mask": placeholder_image(32, 32, alpha=True)}, "",
     "mask is 32x32 but the image is 64x64"),
    ({"prompt": "x", "metadata": {"f": object()}}, "metadata", "JSON-serialisable"),
    ({"prompt": "x", "colour": "red"}, "colour", "is not a field"),
    ({}, "prompt", "is required"),
])
def test_bad_input_is_rejected_with_an_actionable_message(fields, field, words):
    with pytest.raises(RequestValidationError) as info:
        ImageRequest(**fields)
    err = info.value
    assert isinstance(err, ValueError)
    assert any(f.startswith(field) and words in problem for f, problem in err.errors), err.errors
    assert words in str(err)
    assert err.attempts == []


def test_sizes_are_normalised():
    assert ImageRequest(prompt="x", size=" 1536X1024 ").size == "1536x1024"
    r = ImageRequest(prompt="x", size="1536x1024")
    assert (r.pixels, r.aspect_ratio) == ((1536, 1024), (3, 2))
    r = ImageRequest(prompt="x", size="16:9")
    assert (r.pixels, r.aspect_ratio) == (None, (16, 9))
    r = ImageRequest(prompt="x")
    assert (r.size, r.pixels, r.aspect_ratio) == ("auto", None, None)


def test_edit_inputs_from_paths_and_bytes(tmp_path):
    path = tmp_path / "in.png"
    path.write_bytes(PNG)
    r = ImageRequest(prompt="x", images=[path, PNG], mask=PNG_ALPHA)
    assert r.images == (PNG, PNG) and r.is_edit
    assert "<2 image(s)>" in repr(r) and "<mask" in repr(r)
    with pytest.raises(RequestValidationError, match="is not a file"):
        ImageRequest(prompt="x", images=[tmp_path / "missing.png"])


def test_model_validate_also_raises_request_validation_error():
    with pytest.raises(RequestValidationError, match="n: must be between"):
        ImageRequest.model_validate({"prompt": "x", "n": 12})
