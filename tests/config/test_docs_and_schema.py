"""The docs match the code: the options table lists each adapter's options, the policy tables
accept every ``Policy`` field, and every vendor's key variables are the adapter's."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from fallback_chain.config.guard import key_variables
from fallback_chain.config.schema import POLICY_FIELDS
from fallback_chain.config.vendors import VENDORS
from fallback_chain.policy import Policy

DOCS = (Path(__file__).resolve().parents[2] / "docs" / "config.md").read_text()


@pytest.mark.parametrize("vendor", list(VENDORS))
def test_options_table_lists_each_adapters_options(vendor):
    row = re.search(rf"^\| `{vendor}` \| (.*) \|$", DOCS, flags=re.M)
    assert row is not None
    assert sorted(re.findall(r"`(\w+)`", row[1])) == VENDORS[vendor].options


def test_policy_tables_take_every_policy_field():
    assert set(POLICY_FIELDS) == {f.name for f in dataclasses.fields(Policy)} - {"providers"}


def test_key_variables_are_the_adapters():
    from fallback_chain.providers.gemini import adapter as gemini
    from fallback_chain.providers.leonardo import adapter as leonardo
    from fallback_chain.providers.openai import adapter as openai

    assert key_variables("gemini") == list(gemini.ENV_VARS)
    assert key_variables("leonardo") == list(leonardo.ENV_VARS)
    assert key_variables("openai") == list(openai.ENV_VARS)
    assert key_variables("fake") == []
    for name in key_variables():
        assert f"`{name}`" in DOCS


def test_documented_defaults_are_the_adapters():
    from fallback_chain.providers.leonardo.wire import DEFAULT_MODEL_ID

    assert VENDORS["leonardo"].default_model == DEFAULT_MODEL_ID
    assert VENDORS["openai"].default_model == "gpt-image-2"


def test_hedging_and_capacity_fields_are_accepted(write):
    from fallback_chain.config import load_config

    path = write('''
        [chains.main]
        policy = { hedge_delay_s = 2.5, max_hedges = 1, burst_images = 3, max_wait_s = 30 }
        [[chains.main.providers]]
        vendor = "fake"
        ''')
    policy = load_config(path).policy()
    assert (policy.hedge_delay_s, policy.burst_images, policy.max_wait_s) == (2.5, 3, 30)
