"""Replay every corpus answer through the real adapter, over loopback, inside a chain.

Each file of ``tests/corpus/<vendor>/`` (see its README) is served by a small HTTP server of
this test's own on 127.0.0.1, on the path the adapter really calls: OpenAI's
``/v1/images/generations`` or ``/edits`` (through the ``openai`` SDK), Gemini's
``/{version}/models/{model}:generateContent`` (through ``google-genai``), Leonardo's
``POST /api/rest/v1/generations`` and ``GET /api/rest/v1/generations/{id}`` (through the
adapter's httpx client). The adapter sits in ``Chain([adapter, FakeProvider("next")])`` and the
test checks what the chain did with the answer:

* ``stop``: ``ContentPolicyError`` (or the policy's stop), "next" never called;
* ``advance``: one call to the vendor, then "next" serves;
* ``retry``: a second call to the same vendor first, then "next" serves;
* ``success``: the vendor's images are the result.

It also checks the recorded outcome, the cooldown the chain started (kind, and seconds when
the file gives them) and that the vendor's own words survive in the reason. Time is a frozen
clock that moves only when the chain sleeps, so cooldowns are exact and nothing waits.

For Leonardo files that record only the poll answer, the submit answer is the test's own
(``SUBMIT_OK``: a job id and its cost), not part of the corpus.
"""

from __future__ import annotations

from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from replay_helpers import FILES, Replay, load, replay

from fallback_chain import Outcome
from fallback_chain.errors import ContentPolicyError
from fallback_chain.policy import Policy
from fallback_chain.policy.rules import DEFAULT_RULES
from fallback_chain.routing import ChainStoppedError

# ----------------------------------------------------------------------------------- the test


def vendor_calls(run: Replay) -> int:
    """How many times the vendor was asked for images (submits for Leonardo)."""
    return sum(1 for e, _, _ in run.script.seen if e in ("generate", "edit", "submit"))


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.stem}" for p in FILES])
def test_replay(path: Path, loopback: tuple[ThreadingHTTPServer, str]) -> None:
    case = load(path)
    expected = case["expected"]
    server, base = loopback
    run = replay(case, server, base)
    attempts = (run.result or run.error).attempts  # type: ignore[union-attr]
    mine = [a for a in attempts if a.provider != "next" and a.outcome.was_called]
    nexts = [a for a in attempts if a.provider == "next"]
    action, outcome = expected["action"], Outcome(expected["outcome"])

    if action == "success":
        assert run.result is not None, run.error
        assert run.result.provider != "next" and not nexts
        assert [a.outcome for a in mine] == [Outcome.SUCCESS]
        assert run.result.images
        return

    if case["vendor"] == "gemini":  # the documented surface for image generation
        assert run.script.seen[0][2].startswith(
            "/v1beta/models/gemini-2.5-flash-image:generateContent"), run.script.seen
    if case["vendor"] == "azure":  # the deployment URL, with its api-version
        assert run.script.seen[0][2].startswith(
            "/openai/deployments/replay/images/generations?api-version="), run.script.seen
    if case["vendor"] == "vertex":  # the project/location URL
        assert run.script.seen[0][2].startswith(
            "/v1beta1/projects/replay-project/locations/us-central1/publishers/google/models/"
            "gemini-2.5-flash-image:generateContent"), run.script.seen
    assert mine, attempts
    assert mine[0].outcome is outcome, (mine[0].outcome, mine[0].message)
    if action == "stop":
        wanted = (ContentPolicyError if outcome is Outcome.CONTENT_POLICY
                  else ChainStoppedError)
        assert isinstance(run.error, wanted), run.error
        assert not nexts, "the prompt must not go on to the next provider"
        assert len(mine) == 1 and vendor_calls(run) == 1
        reason = run.error.reason if isinstance(run.error, ContentPolicyError) else str(run.error)
        if expected.get("categories"):
            assert isinstance(run.error, ContentPolicyError)
            assert sorted(run.error.categories) == sorted(expected["categories"])
    else:
        assert run.result is not None and run.result.provider == "next", run.error
        tries = 2 if action == "retry" else 1
        assert [a.outcome for a in mine] == [outcome] * tries
        assert vendor_calls(run) == tries
        reason = mine[0].message or ""
    if expected.get("reason_contains"):
        assert expected["reason_contains"].lower() in reason.lower(), reason

    kind = expected.get("cooldown", "none")
    seconds = [c.seconds for c in run.cooldowns]
    if kind == "none":
        assert seconds == []
    elif kind == "retry_after":  # the vendor's delay, within the policy's ceiling
        assert len(seconds) == 1
        ceiling = Policy().max_retry_after_s
        assert seconds[0] == pytest.approx(min(float(expected["cooldown_s"]), ceiling))
    elif kind == "default":
        assert seconds == [DEFAULT_RULES[outcome].cooldown_s]
    else:
        assert kind == "long"
        assert len(seconds) == 1 and seconds[0] >= 3600.0


def test_corpus_size_and_provenance() -> None:
    """At least 80 answers, every one with a source, a quoting mode and an expectation."""
    assert len(FILES) >= 80
    for path in FILES:
        case = load(path)
        source = case["source"]
        if source.get("recorded"):  # contributed with `fallback-chain cassette to-corpus`
            assert source["where"] == f"recorded on {source['recorded']} by the user", path
        else:
            assert source["url"].startswith("https://"), path
        assert source["quoted"] in ("whole", "completed"), path
        if source["quoted"] == "completed":
            assert source.get("filled_in"), path
        assert case["expected"]["action"] in ("stop", "advance", "retry", "success"), path
        Outcome(case["expected"]["outcome"])
