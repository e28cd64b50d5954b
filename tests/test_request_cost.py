"""``ImageRequest`` construction does no avoidable work: no private attributes to set up, no
deep copy of the ``metadata`` default, the size pattern matched once."""

from __future__ import annotations

import re
from typing import Any

import pytest

from fallback_chain import ImageRequest
from fallback_chain import request as request_mod


def test_requests_carry_no_private_state() -> None:
    assert ImageRequest.__private_attributes__ == {}
    req = ImageRequest(prompt="a cat", size="1536x1024")
    assert req.__pydantic_private__ is None
    assert (req.pixels, req.aspect_ratio) == ((1536, 1024), (3, 2))
    ratio = ImageRequest(prompt="a cat", size="16:9")
    assert (ratio.pixels, ratio.aspect_ratio) == (None, (16, 9))
    auto = ImageRequest(prompt="a cat")
    assert (auto.pixels, auto.aspect_ratio) == (None, None)
    # derived from the size when asked, so a copy with another size tells the truth
    assert req.model_copy(update={"size": "640x480"}).aspect_ratio == (4, 3)


def test_the_metadata_default_is_made_not_copied() -> None:
    field = ImageRequest.model_fields["metadata"]
    assert field.default_factory is dict
    a, b = ImageRequest(prompt="a"), ImageRequest(prompt="b")
    assert a.metadata == {} and a.metadata is not b.metadata


class _Counting:
    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern
        self.calls = 0

    def match(self, text: str) -> Any:
        self.calls += 1
        return self.pattern.match(text)


def test_the_size_pattern_is_matched_once_per_request(monkeypatch: pytest.MonkeyPatch) -> None:
    counting = _Counting(request_mod._PIXELS)
    monkeypatch.setattr(request_mod, "_PIXELS", counting)
    ImageRequest(prompt="a cat", size="1232x928")
    assert counting.calls == 1
