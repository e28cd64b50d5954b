"""The walk of one request down a chain, one idea per module.

* ``slot``: ``Slot`` (one provider with its policy and breaker) and ``Router`` (the chain's
  long-lived state).
* ``admission``: the ordered checks before each call, and the permits they hand out.
* ``call``: one call with its timeout, mapped to an ``Outcome``.
* ``accounting``: cost, permits, statistics, the attempt record and events after a call.
* ``delivery``: images kept from partial deliveries.
* ``run``: ``RequestRun``, the driver: passes, waits, retries, hedged races.
"""

from .run import RequestRun
from .slot import Router, Slot

__all__ = ["RequestRun", "Router", "Slot"]
