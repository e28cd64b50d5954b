"""The pytest plugin: the example autopilot's own tests, its fixtures here, its messages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fallback_chain.errors import ChainExhaustedError
from fallback_chain.testing import (
    FakeChainFactory,
    VirtualTime,
    assert_attempts,
    assert_cost,
    assert_served_by,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "autopilot"


def test_the_example_autopilots_tests_pass_with_only_the_plugin() -> None:
    assert not list(EXAMPLE.rglob("conftest.py"))  # nothing but the plugin's fixtures
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-c",
         str(EXAMPLE / "pytest.ini"), "--rootdir", str(EXAMPLE)],
        cwd=EXAMPLE, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "5 passed" in done.stdout


def test_the_fixtures_are_served_to_this_suite_too(fake_chain: FakeChainFactory,
                                                  virtual_clock: VirtualTime) -> None:
    chain = fake_chain("429", "ok", clock=virtual_clock.clock)
    result = virtual_clock.run(chain.agenerate("a cat"))
    assert_attempts(result, [("fake-1", "rate_limited"), ("fake-2", "success")])
    assert_served_by(result, "fake-2")
    assert_cost(result, 0.01)


@pytest.mark.fc_faults({"gemini": {"script": "503,ok"}})
def test_the_fc_faults_marker_sets_the_emulators_faults(fc_emulator: object) -> None:
    from fallback_chain.testing import EmulatorKit

    assert isinstance(fc_emulator, EmulatorKit)
    chain = fc_emulator.chain(fc_emulator.gemini())
    result = chain.generate("a heron")
    assert_attempts(result, ["server_error", "success"])
    assert fc_emulator.requests.count(vendor="gemini") == 2


def test_a_failing_assertion_lists_every_attempt(fake_chain: FakeChainFactory) -> None:
    chain = fake_chain("500,500", "ok")
    result = chain.generate("a fox")
    with pytest.raises(AssertionError) as caught:
        assert_attempts(result, ["success"])
    message = str(caught.value)
    assert "expected: ['success']" in message
    assert "['server_error', 'server_error', 'success']" in message
    assert "1. fake-1" in message and "HTTP 500" in message and "3. fake-2" in message
    with pytest.raises(AssertionError, match="served by 'fake-2', not 'fake-1'"):
        assert_served_by(result, "fake-1")
    with pytest.raises(AssertionError, match=r"cost \$0.010000, expected \$0.500000"):
        assert_cost(result, 0.5)


def test_the_helpers_read_a_chain_error_too(fake_chain: FakeChainFactory) -> None:
    chain = fake_chain("auth_error")
    with pytest.raises(ChainExhaustedError) as caught:
        chain.generate("a fox")
    assert_attempts(caught.value, ["auth_error"])
    assert_cost(caught.value, 0.0)
