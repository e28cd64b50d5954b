"""Spend summaries from a :class:`~fallback_chain.cost.ledger.Ledger`: by day, provider, model
and outcome (and, asked for by name, by user and project), with the money spent on attempts
that did not deliver in its own column.

The grouping runs in SQLite, so large ledgers summarise without loading rows into Python.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..outcome import Outcome

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .ledger import Ledger, When

Grouping = Literal["day", "provider", "model", "outcome", "user", "project"]
#: The default sections; ``user`` and ``project`` (spend per tenant) are asked for by name.
GROUPINGS: tuple[Grouping, ...] = ("day", "provider", "model", "outcome")
TENANT_GROUPINGS: tuple[Grouping, ...] = ("user", "project")
NO_TENANT = "(none)"  # the key of requests made without a user (project)

_KEY_SQL: dict[Grouping, str] = {
    "day": "substr(started_at, 1, 10)",
    "provider": "provider",
    "model": "provider || ' / ' || model",
    "outcome": "outcome",
    "user": f"COALESCE(user, '{NO_TENANT}')",
    "project": f"COALESCE(project, '{NO_TENANT}')",
}
_NOT_CALLED = ", ".join(f"'{o.value}'" for o in Outcome if not o.was_called)
_AGGREGATES = f"""
    COUNT(*),
    SUM(CASE WHEN outcome IN ({_NOT_CALLED}) THEN 0 ELSE 1 END),
    SUM(CASE WHEN outcome = 'success' THEN 1 ELSE 0 END),
    COUNT(DISTINCT request_id),
    COALESCE(SUM(cost_usd), 0),
    COALESCE(SUM(CASE WHEN outcome = 'success' THEN 0 ELSE cost_usd END), 0),
    COALESCE(SUM(CASE WHEN cost_source = 'estimated' THEN cost_usd ELSE 0 END), 0)
"""


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One group. ``undelivered_usd`` is spend on attempts that did not deliver (timeouts
    billed, failures the vendor charged for); ``estimated_usd`` is the part of ``spent_usd``
    that is an estimate rather than a vendor report."""

    key: str
    attempts: int  # rows, including skips
    calls: int  # attempts that reached the provider
    delivered: int  # successful attempts
    requests: int  # distinct request ids
    spent_usd: float
    undelivered_usd: float
    estimated_usd: float

    @property
    def usd_per_delivery(self) -> float | None:
        return self.spent_usd / self.delivered if self.delivered else None


@dataclass(frozen=True, slots=True)
class CostReport:
    since: str | None
    until: str | None
    total: ReportRow
    sections: dict[str, list[ReportRow]]

    def to_dict(self) -> dict[str, Any]:
        def row(r: ReportRow) -> dict[str, Any]:
            return {**asdict(r), "usd_per_delivery": r.usd_per_delivery}
        return {"since": self.since, "until": self.until, "total": row(self.total),
                "sections": {k: [row(r) for r in rows] for k, rows in self.sections.items()}}


def cost_report(ledger: Ledger, *, since: When = None, until: When = None,
                by: Sequence[Grouping] = GROUPINGS) -> CostReport:
    """Totals and one section per grouping in ``by``; rows sorted by spend (days by date)."""
    from .ledger import time_bound, where_clause

    unknown = [b for b in by if b not in _KEY_SQL]
    if unknown:
        raise ValueError(f"unknown grouping(s) {unknown}; use "
                         f"{', '.join(GROUPINGS + TENANT_GROUPINGS)}")
    where, params = where_clause(since=since, until=until)
    cond = (" WHERE " + " AND ".join(where)) if where else ""
    total = _row("total", ledger.query(f"SELECT {_AGGREGATES} FROM attempts{cond}",
                                       tuple(params))[0])
    sections: dict[str, list[ReportRow]] = {}
    for grouping in by:
        key = _KEY_SQL[grouping]
        order = "1" if grouping == "day" else "6 DESC, 1"
        rows = ledger.query(
            f"SELECT {key}, {_AGGREGATES} FROM attempts{cond} GROUP BY 1 ORDER BY {order}",
            tuple(params))
        sections[grouping] = [_row(str(r[0]), r[1:]) for r in rows]
    return CostReport(None if since is None else time_bound(since),
                      None if until is None else time_bound(until), total, sections)


def _row(key: str, values: Sequence[Any]) -> ReportRow:
    attempts, calls, delivered, requests, spent, undelivered, estimated = values
    return ReportRow(key, int(attempts or 0), int(calls or 0), int(delivered or 0),
                     int(requests or 0), round(float(spent), 9), round(float(undelivered), 9),
                     round(float(estimated), 9))
