"""Settle one attempt's cost from what the vendor said and what was expected.

* ``reported``: the vendor reported usage or credits (on success, or billed on failure).
* ``estimated``: nothing reported, so the estimate made before the call stands. Used for a
  success (or a delivery a validator rejected) without a report, and for a timeout (the
  vendor may still finish and bill it) unless the policy says timeouts are free.
* a failed call that still delivered some images (``delivered``, the share of the request it
  served) without a report is billed that share of the estimate, as ``estimated``.
* ``none``: nothing was billed: skips, 429s, refusals and other errors without a reported bill.

A reported cost that is not a finite, non-negative number (a vendor's usage block with
negative or absurd token counts) is ignored as if nothing had been reported, so it never
reaches attempts, the ledger or budgets.
"""

from __future__ import annotations

import math

from ..outcome import Outcome
from ..results import CostSource

#: Outcomes whose images were delivered (a rejected image was still made and billed).
_DELIVERED = frozenset({Outcome.SUCCESS, Outcome.REJECTED})


def settle_cost(outcome: Outcome, estimate: float | None, reported: float | None, *,
                bill_timeouts: bool = True, delivered: float = 0.0) -> tuple[float, CostSource]:
    if reported is not None and math.isfinite(reported) and reported >= 0:
        return reported, "reported"
    if delivered > 0 and estimate is not None and outcome is not Outcome.SUCCESS:
        return estimate * min(delivered, 1.0), "estimated"
    if estimate is not None and (
            outcome in _DELIVERED or (outcome is Outcome.TIMEOUT and bill_timeouts)):
        return estimate, "estimated"
    return 0.0, "none"
