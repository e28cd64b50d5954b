"""What the router does after each outcome: the default policy table (README, "The default
policy") as data."""

from __future__ import annotations

from dataclasses import dataclass

from ..outcome import Outcome


@dataclass(frozen=True, slots=True)
class Rule:
    """The action for one outcome.

    ``retries``: extra tries on the same provider before advancing. ``stop``: end the chain
    (no further provider is called). ``cooldown_s``: keep the provider out of every request for
    this long afterwards (a server's Retry-After takes precedence for ``rate_limited``).
    ``alert``: emit a quota alert.
    """

    retries: int = 0
    stop: bool = False
    cooldown_s: float = 0.0
    alert: bool = False


#: The default policy (README, "The default policy"). Outcomes not listed here (skips) simply
#: advance.
DEFAULT_RULES: dict[Outcome, Rule] = {
    Outcome.RATE_LIMITED: Rule(cooldown_s=30.0),
    Outcome.QUOTA_EXHAUSTED: Rule(cooldown_s=3600.0, alert=True),
    Outcome.SERVER_ERROR: Rule(retries=1),
    Outcome.CONNECTION_ERROR: Rule(retries=1),
    Outcome.MALFORMED_RESPONSE: Rule(retries=1),
    Outcome.TIMEOUT: Rule(),
    Outcome.CONTENT_POLICY: Rule(stop=True),
    Outcome.INVALID_REQUEST: Rule(),
    Outcome.AUTH_ERROR: Rule(cooldown_s=3600.0),
    Outcome.NOT_FOUND: Rule(cooldown_s=86400.0),
    # a validator rejected the delivered images: advance (``retries={"rejected": n}`` retries)
    Outcome.REJECTED: Rule(),
}

ADVANCE = Rule()

#: An ``invalid_request`` the adapter marked as a request fault (``ProviderError.request_fault``:
#: the request itself is broken, so every vendor would refuse it and each refusal may be
#: billed): stop the chain. ``Policy(on_request_fault="advance")`` treats it like any other
#: ``invalid_request`` (try the next provider). An ``invalid_request`` without the mark means
#: "this vendor does not take this request" (a size, parameter or model it lacks) and advances.
REQUEST_FAULT = Rule(stop=True)

#: Outcomes a provider can produce (and a policy can configure).
CONFIGURABLE = frozenset(DEFAULT_RULES)
