"""The built-in adapters answer ``Provider.retired_reason`` from the model catalogue, so a
chain skips a model that is shut down on its clock's date before any call, with the reason."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime

import pytest

from fallback_chain import Chain, Outcome
from fallback_chain.provider import Provider
from fallback_chain.providers import FakeProvider, GeminiProvider, LeonardoProvider, OpenAIProvider
from fallback_chain.vtime import VirtualClock, run_virtual
from fallback_chain.walk.admission import LifecycleCheck

UNREACHABLE = "http://127.0.0.1:9/v1"  # nothing listens: a call would fail, not be skipped


def wall(day: str) -> float:
    return datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()


def quietly(make):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():  # the construction warns about a retired model
        warnings.simplefilter("ignore")
        return make()


@pytest.mark.parametrize("cls", [OpenAIProvider, GeminiProvider, LeonardoProvider])
def test_every_built_in_adapter_answers_the_lifecycle_question(cls: type[Provider]) -> None:
    assert cls.retired_reason is not Provider.retired_reason


def test_a_model_shut_down_on_the_chains_date_is_skipped_before_any_call() -> None:
    clock = VirtualClock(epoch=wall("2026-11-02"))  # gpt-image-1 shut down on 2026-10-23
    retired = quietly(lambda: OpenAIProvider(model="gpt-image-1", api_key="k",
                                             base_url=UNREACHABLE, clock=clock))
    backup = FakeProvider("backup", clock=clock)
    chain = Chain([retired, backup], clock=clock, log=False)
    assert LifecycleCheck in [type(c) for c in chain._slots[0].checks]

    result = run_virtual(chain.agenerate("a lighthouse", size="1024x1024"))
    first, second = result.attempts
    assert (first.provider, first.outcome, first.latency_s) == ("openai", Outcome.SKIPPED, 0.0)
    assert first.message is not None and "gpt-image-1" in first.message
    assert "shut down on 2026-10-23" in first.message and "replacement" in first.message
    assert (second.provider, second.outcome) == ("backup", Outcome.SUCCESS)
    assert backup.calls == 1


def test_the_date_comes_from_the_clock() -> None:
    openai = quietly(lambda: OpenAIProvider(model="gpt-image-1", api_key="k",
                                            base_url=UNREACHABLE))
    assert openai.retired_reason(wall("2026-10-22T23:59:59")) is None
    assert openai.retired_reason(wall("2026-10-23")) is not None  # from the start of the day
    current = OpenAIProvider(model="gpt-image-2", api_key="k", base_url=UNREACHABLE)
    assert current.retired_reason(wall("2030-01-01")) is None  # no shutdown date

    gemini = quietly(lambda: GeminiProvider(model="imagen-3.0-generate-001", api_key="k"))
    reason = gemini.retired_reason(wall("2020-01-01"))  # shut down, no date: always
    assert reason is not None and "imagen-3.0-generate-001" in reason
