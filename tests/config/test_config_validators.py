"""A chain in the config file names built-in validators (docs/quality.md)."""

from __future__ import annotations

import asyncio
import warnings

import pytest

from fallback_chain.config import ConfigError, ConfigWarning, load_config
from fallback_chain.errors import ChainExhaustedError
from fallback_chain.outcome import Outcome


def _chain(write, names: str):
    path = write(f'''
        [chains.main]
        validators = {names}
        [[chains.main.providers]]
        vendor = "fake"
        [chains.main.providers.options]
        image_size = [64, 48]
        ''')
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        config = load_config(path)
    return config.chain(ledger=False, log=False)


def test_named_validators_check_every_image(write):
    chain = _chain(write, '["decodes", "size"]')
    assert asyncio.run(chain.agenerate("a fox", size="4:3")).provider == "fake"
    with pytest.raises(ChainExhaustedError, match="images rejected") as failed:
        asyncio.run(chain.agenerate("a fox", size="1:1"))
    assert failed.value.attempts[0].outcome is Outcome.REJECTED


def test_an_unknown_validator_is_a_config_error(write):
    with pytest.raises(ConfigError, match="unknown validator 'sharp'"):
        _chain(write, '["sharp"]')
