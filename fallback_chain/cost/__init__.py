"""Cost accounting: what each attempt cost, and where that figure came from.

* ``settle_cost``: settle one attempt's cost (reported, estimated or none).
* ``PriceCatalogue``: the price data (the prices in the model records,
  ``providers/<vendor>/models.json``), overridable; ``estimate`` prices a call before it is
  made; ``cost_from_openai_usage`` / ``cost_from_gemini_usage`` /
  ``cost_from_leonardo_credits`` (each in its vendor's ``providers/<vendor>/cost.py``) price it
  from what the vendor reported.
* ``Budget``: per-request, daily and monthly caps the router checks before each attempt.
* ``Quotas`` / ``Limit``: per-user and per-project caps (images and USD per day and month).
* ``Ledger``: every attempt in SQLite; ``cost_report`` summarises it.
* ``estimate_batch``: best / expected / worst cost of a batch; ``order_by_expected_cost``.

Everything but ``settle_cost`` and ``estimate`` is loaded on first use, so importing this
package stays cheap and the price data is read only when something needs a price. ``estimate``
is bound at import (its module is small and reads no prices): a function named like its
submodule cannot be lazy, since importing the submodule (``cost/batch.py`` does) would bind
the package attribute to the module instead of the function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports
from .estimate import estimate
from .settle import settle_cost

if TYPE_CHECKING:
    from .batch import BatchEstimate, ChainStep, estimate_batch, parse_chain_spec
    from .budget import Budget, Reservation
    from .budget_store import BudgetStore, MemoryBudgetStore
    from .catalogue import PriceCatalogue, PriceCatalogueError
    from .ledger import Ledger
    from .ordering import Candidate, order_by_expected_cost
    from .quotas import Limit, Quotas
    from .report import CostReport, cost_report
    from .usage import (
        cost_from_gemini_usage,
        cost_from_leonardo_credits,
        cost_from_leonardo_job,
        cost_from_openai_usage,
    )

_WHERE = {
    "BatchEstimate": ".batch",
    "ChainStep": ".batch",
    "estimate_batch": ".batch",
    "parse_chain_spec": ".batch",
    "Budget": ".budget",
    "Reservation": ".budget",
    "BudgetStore": ".budget_store",
    "MemoryBudgetStore": ".budget_store",
    "PriceCatalogue": ".catalogue",
    "PriceCatalogueError": ".catalogue",
    "Ledger": ".ledger",
    "Candidate": ".ordering",
    "order_by_expected_cost": ".ordering",
    "Limit": ".quotas",
    "Quotas": ".quotas",
    "CostReport": ".report",
    "cost_report": ".report",
    "cost_from_gemini_usage": ".usage",
    "cost_from_leonardo_credits": ".usage",
    "cost_from_leonardo_job": ".usage",
    "cost_from_openai_usage": ".usage",
}

__all__ = [
    "BatchEstimate",
    "Budget",
    "BudgetStore",
    "Candidate",
    "ChainStep",
    "CostReport",
    "Ledger",
    "Limit",
    "MemoryBudgetStore",
    "PriceCatalogue",
    "PriceCatalogueError",
    "Quotas",
    "Reservation",
    "cost_from_gemini_usage",
    "cost_from_leonardo_credits",
    "cost_from_leonardo_job",
    "cost_from_openai_usage",
    "cost_report",
    "estimate",
    "estimate_batch",
    "order_by_expected_cost",
    "parse_chain_spec",
    "settle_cost",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
