"""The real adapters against the emulator on a loopback server: what each vendor saw, what
each run cost, and failed runs on the sheet."""

from __future__ import annotations

import asyncio
import warnings
from datetime import UTC, datetime

import pytest
from compare_helpers import KEY
from PIL import Image

from fallback_chain import ImageRequest, Policy
from fallback_chain.clock import FastForwardClock
from fallback_chain.compare import compare, render_contact_sheet
from fallback_chain.compare.sheet import FAIL_EDGE, plan_sheet
from fallback_chain.compare.specs import build_vendor_providers, parse_specs

POLICY = Policy(backoff_initial_s=0.01, attempt_timeout_s=10)


def _providers(base_url, spec="gemini,leonardo,openai"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifecycle notices for retired models
        return build_vendor_providers(parse_specs(spec), api_key=KEY, base_url=base_url,
                                      fast_poll=True)


async def _compare(providers, runs, **kw):
    try:
        return await compare(providers, ImageRequest(prompt="a red fox in snow",
                                                     size="1024x1024"),
                             runs, policy=POLICY, **kw)
    finally:
        await asyncio.gather(*(p.aclose() for p in providers))


def test_three_vendors_with_failures(server, tmp_path):
    emulator, base_url = server
    emulator.set_faults({"leonardo": {"job_delay_s": 0.02},
                         "openai": {"script": "500,500"},        # run 1 fails, retried once
                         "gemini": {"script": "ok,image_safety"}})  # run 2 refused
    comparison = asyncio.run(_compare(_providers(base_url), 3, concurrency=1))

    outcomes = {r.label: [c.outcome for c in r.cells] for r in comparison.rows}
    assert outcomes == {"gemini": ["success", "content_policy", "success"],
                        "leonardo": ["success"] * 3,
                        "openai/gpt-image-2": ["server_error", "success", "success"]}
    # what the vendors saw: a retried failure is two calls, nothing more
    assert emulator.log.count(vendor="openai", endpoint="generate") == 4
    assert emulator.log.count(vendor="gemini", endpoint="generate") == 3
    assert emulator.log.count(vendor="leonardo", endpoint="generate") == 3
    for cell in comparison.cells:
        if cell.delivered:
            assert cell.cost_usd > 0 and cell.latency_s > 0
            assert cell.attempts[-1].cost_source == "reported"
            assert cell.image is not None and cell.image.width > 0
    refused = comparison.rows[0].cells[1]
    assert refused.message and refused.attempts[0].outcome.value == "content_policy"
    stats = {s.label: s for s in comparison.stats()}
    assert stats["openai/gpt-image-2"].failures == {"server_error": 1}
    assert stats["openai/gpt-image-2"].calls == 4
    assert stats["leonardo"].spread == 0.0  # the emulator draws the same picture per prompt
    # OpenAI and Leonardo draw from the same seed; Gemini's picture differs
    cross = comparison.cross_spread()
    assert cross[(1, 2)] is not None and cross[(1, 2)] < 0.02
    assert cross[(0, 1)] is not None and cross[(0, 1)] > 0.05

    path = render_contact_sheet(comparison, tmp_path / "sheet.png", thumb_px=128)
    plan = plan_sheet(comparison, 128)
    with Image.open(path) as img:
        sheet = img.convert("RGB")
    assert sheet.size == (plan.width, plan.height)
    for row, run in ((0, 2), (2, 1)):
        x0, y0, _, y1 = plan.cell_box(row, run)
        assert sheet.getpixel((x0, (y0 + y1) // 2)) == FAIL_EDGE
    x0, y0, _, y1 = plan.cell_box(1, 1)
    assert sheet.getpixel((x0, (y0 + y1) // 2)) != FAIL_EDGE


def test_revised_prompts_are_kept(server):
    _, base_url = server
    # dall-e-3 was shut down on 2026-05-12: compare on a date before it (a chain skips a
    # model shut down on its clock's date without calling it)
    before = FastForwardClock(datetime(2026, 5, 1, tzinfo=UTC).timestamp())
    comparison = asyncio.run(_compare(_providers(base_url, "openai:dall-e-3"), 2, clock=before))
    assert [c.revised_prompt for c in comparison.cells] == [
        "a red fox in snow, rendered in rich detail."] * 2
    doc = comparison.to_dict()
    assert doc["cells"][0]["revised_prompt"].endswith("rich detail.")


def test_bad_key_fails_every_run_without_sinking_the_comparison(server):
    _, base_url = server
    providers = _providers(base_url, "gemini")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrong = build_vendor_providers(parse_specs("openai"), api_key="wrong-key-123",
                                       base_url=base_url)
    comparison = asyncio.run(_compare([*providers, *wrong], 2, concurrency=2))
    assert [c.outcome for c in comparison.rows[0].cells] == ["success", "success"]
    assert comparison.rows[1].cells[0].outcome == "auth_error"
    assert comparison.rows[1].cells[1].outcome in ("auth_error", "cooling_down")
    assert "wrong-key-123" not in str(comparison.to_dict())


@pytest.mark.parametrize("spec", ["gemini", "leonardo", "openai"])
def test_missing_key_names_the_variable(spec):
    from fallback_chain.compare.specs import build_vendor_provider
    from fallback_chain.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="_API_KEY"):
        build_vendor_provider(parse_specs(spec)[0])
