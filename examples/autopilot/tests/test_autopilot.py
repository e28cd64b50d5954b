"""The autopilot's tests: only the fixtures and helpers of fallback-chain's pytest plugin."""

from __future__ import annotations

import pytest
from autopilot import amake_cover, make_cover

from fallback_chain.testing import assert_attempts, assert_cost, assert_served_by


def test_a_rate_limited_vendor_is_skipped_and_the_next_one_serves(fc_emulator):
    fc_emulator.script("openai", "429")
    chain = fc_emulator.chain(fc_emulator.openai(), fc_emulator.gemini())

    cover = make_cover(chain, "Tides of the North Sea")

    assert cover.image is not None
    assert_attempts(cover, ["rate_limited", "success"])
    assert_served_by(chain.generate("a second cover"), "gemini")
    assert fc_emulator.requests.count(vendor="openai") == 1  # in cooldown for the second


@pytest.mark.fc_faults({"openai": {"script": "500,ok"}})
def test_a_server_error_is_retried_once_on_the_same_vendor(fc_emulator):
    chain = fc_emulator.chain(fc_emulator.openai())

    cover = make_cover(chain, "Winter markets")

    assert_attempts(cover, [("openai", "server_error"), ("openai", "success")])
    assert cover.cost_usd > 0  # only the delivered call is billed


def test_when_every_provider_fails_the_cover_is_text_only(fake_chain):
    chain = fake_chain("500,500", "content_policy")

    cover = make_cover(chain, "A quiet election")

    assert cover.image is None
    assert_attempts(cover, ["server_error", "server_error", "content_policy"])
    assert_cost(cover, 0.0)


def test_the_second_provider_pays_for_the_first_ones_outage(fake_chain):
    chain = fake_chain("quota_exhausted", "ok")

    cover = make_cover(chain, "Harvest")

    assert_served_by(cover, "fake-2")
    assert_cost(cover, 0.01)  # FakeProvider's default price per image


def test_a_hanging_vendor_costs_virtual_time_not_real_time(fake_chain, virtual_clock):
    chain = fake_chain("timeout", "ok", clock=virtual_clock.clock, attempt_timeout_s=45)

    cover = virtual_clock.run(amake_cover(chain, "Night trains"))

    assert_attempts(cover, ["timeout", "success"])
    assert virtual_clock.now >= 45  # the timeout elapsed on the virtual clock only
