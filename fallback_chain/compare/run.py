"""``compare``: run one request ``runs`` times on each provider, every provider on its own.

Each provider gets a single-provider :class:`~fallback_chain.chain.Chain`, so a run is a real
chain request (the policy's retries, timeouts, cooldown waits and breaker apply, and every
attempt is recorded with its cost and latency) but never falls back to another provider: a
failed run is a failed cell, not an error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from ..chain import Chain
from ..clock import SYSTEM_CLOCK, Clock
from ..errors import (
    BudgetExceededError,
    ChainError,
    ConfigurationError,
    ContentPolicyError,
    DeadlineExceededError,
)
from ..events import Subscriber
from ..policy import Policy
from ..provider import Provider
from ..request import ImageRequest
from ..secrets import redact
from .model import SUCCESS, Cell, Comparison, Row

MAX_RUNS = 100


async def compare(providers: Sequence[Provider], request: ImageRequest | str, runs: int, *,
                  concurrency: int = 4, policy: Policy | None = None,
                  labels: Sequence[str] | None = None, clock: Clock | None = None,
                  on_cell: Callable[[Cell], None] | None = None,
                  on_event: Subscriber | None = None) -> Comparison:
    """Run ``request`` ``runs`` times on each of ``providers`` and collect every outcome.

    At most ``concurrency`` runs are in flight at once, across all providers; runs start in
    run order (run 1 on every provider, then run 2...), so a slow provider does not hold the
    others back. ``policy`` applies to every provider (its ``providers={name: ...}``
    overrides are picked per provider; names not in the comparison are ignored). ``labels``
    names the rows (default: each provider's key, with the model added when two share a key).
    ``on_cell`` is called as each run ends (for progress); ``on_event`` subscribes to every
    chain's events. The providers are not closed: call their ``aclose()`` when done.

    Raises ``ConfigurationError`` for no providers, ``runs`` outside 1–100, ``concurrency``
    below 1 or the wrong number of labels; ``RequestValidationError`` for a bad request.
    Provider failures never raise: they are cells with ``outcome`` and ``message``.
    """
    providers = list(providers)
    if not providers:
        raise ConfigurationError("compare needs at least one provider")
    if not 1 <= runs <= MAX_RUNS:
        raise ConfigurationError(f"runs must be between 1 and {MAX_RUNS} (got {runs})")
    if concurrency < 1:
        raise ConfigurationError(f"concurrency must be at least 1 (got {concurrency})")
    names = list(labels) if labels is not None else default_labels(providers)
    if len(names) != len(providers):
        raise ConfigurationError(
            f"{len(names)} label(s) for {len(providers)} provider(s); give one per provider")
    req = _fresh(request)
    clock = clock or SYSTEM_CLOCK
    chains = [Chain([p], policy=_policy_for(policy, p), name=f"compare:{label}", clock=clock,
                    on_event=on_event, log=False)
              for p, label in zip(providers, names, strict=True)]
    rows = [Row(i, label, p.name, p.model)
            for i, (p, label) in enumerate(zip(providers, names, strict=True))]
    gate = asyncio.Semaphore(concurrency)

    async def one(row: Row, chain: Chain, run: int) -> Cell:
        async with gate:
            cell = await _run_once(chain, req, row, run, clock)
        if on_cell is not None:
            on_cell(cell)
        return cell

    started_wall, started = clock.wall(), clock.now()
    jobs = [one(rows[i], chains[i], run) for run in range(1, runs + 1) for i in range(len(rows))]
    cells = await asyncio.gather(*jobs)
    for cell in sorted(cells, key=lambda c: (c.row, c.run)):
        rows[cell.row].cells.append(cell)
    return Comparison(req, runs, rows, datetime.fromtimestamp(started_wall, UTC),
                      clock.now() - started)


def default_labels(providers: Sequence[Provider]) -> list[str]:
    """Each provider's key; ``key:model`` where keys repeat; ``#n`` if that still repeats."""
    keys = [p.key for p in providers]
    labels = [k if keys.count(k) == 1 else f"{k}:{p.model}" for k, p in zip(keys, providers,
                                                                          strict=True)]
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if labels.count(label) == 1 else f"{label}#{seen[label]}")
    return out


def _fresh(request: ImageRequest | str) -> ImageRequest:
    """The request without an idempotency key: each run is its own request, with its own id."""
    if isinstance(request, str):
        return ImageRequest(prompt=request)
    if request.idempotency_key is None:
        return request
    return ImageRequest(**{**request.model_dump(), "idempotency_key": None})


def _policy_for(policy: Policy | None, provider: Provider) -> Policy | None:
    if policy is None or not policy.providers:
        return policy
    own = {k: v for k, v in policy.providers.items() if k in (provider.key, provider.name)}
    return policy.replace(providers=own)


async def _run_once(chain: Chain, request: ImageRequest, row: Row, run: int,
                    clock: Clock) -> Cell:
    started = clock.now()
    try:
        result = await chain.agenerate(request)
    except ChainError as exc:
        outcome, message = _why(exc)
        return Cell(row.index, run, row.label, row.provider, row.model, outcome, exc.cost_usd,
                    clock.now() - started, list(exc.attempts), None, message)
    except Exception as exc:  # an adapter bug must not sink the whole comparison
        return Cell(row.index, run, row.label, row.provider, row.model, "error", 0.0,
                    clock.now() - started, [], None,
                    redact(f"{type(exc).__name__}: {exc}")[:500])
    return Cell(row.index, run, row.label, row.provider, row.model, SUCCESS, result.cost_usd,
                result.latency_s, list(result.attempts), result, None)


def _why(exc: ChainError) -> tuple[str, str]:
    """The failed cell's outcome and message."""
    if isinstance(exc, ContentPolicyError):
        return "content_policy", exc.reason
    if isinstance(exc, DeadlineExceededError):
        return "deadline_exceeded", exc.message
    if isinstance(exc, BudgetExceededError):
        return "budget_exceeded", exc.message
    if exc.attempts:
        last = exc.attempts[-1]
        return last.outcome.value, last.message or exc.message
    return "error", exc.message
