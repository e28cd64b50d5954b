"""The demonstration run: no API keys needed, real adapters against the built-in emulator.

``fallback-chain demo [--out DIR] [--count N] [--seed S] [--json]`` (or
``python -m fallback_chain.demo`` with the same options) starts the emulated Gemini, Leonardo
and OpenAI APIs on a loopback port, builds the canonical chain of the real adapters pointed at
it (explicitly: nothing here ever talks to a real vendor), and generates a few images one after
another. The emulator is told to misbehave the way the real services do: Gemini is often
rate-limited, Leonardo's jobs sometimes fail, and one prompt is refused on content grounds, so
every attempt printed shows the chain at work. Images and one JSON sidecar per image (prompt,
provider, model, cost, latency, every attempt) go to ``--out``; a summary per provider ends it.

Reusable pieces: :func:`demo_emulator` (the emulator with the demo's faults) and
:func:`build_demo_chain` (the chain of real adapters pointed at an emulator's URL).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .chain import Chain
from .errors import ChainError, ContentPolicyError
from .policy import Policy
from .results import Attempt, ChainResult
from .richtable import print_table

if TYPE_CHECKING:
    from .emulator import Emulator
    from .events import Event

KEY = "demo-key"  # the emulator's key; no real key is read or needed
DEFAULT_SEED = 7
#: Not scripts/demo's demo-out/: the two demos never mix their files.
DEFAULT_OUT = Path("demo-requests-out")

BRIEFS = [
    "a lighthouse at dusk, watercolour",
    "a bowl of ramen on a wooden table, top-down photo",
    "an isometric city block at night, neon",
    "a red fox in fresh snow",
    "a prompt that the safety system refuses",
    "a product shot of a ceramic mug on linen",
    "a mountain lake at sunrise, mist",
    "a minimalist poster of a bicycle",
]

#: Gemini's first answers in order (then 30 % rate limits at random): the fifth brief is
#: refused. Its Retry-After is short, so Gemini is back for the next brief.
FAULTS: dict[str, Any] = {
    "default": {"latency": {"dist": "uniform", "min_ms": 20, "max_ms": 120}},
    "gemini": {"script": "429,ok,429,ok,image_safety", "rates": {"429": 0.3},
               "retry_after": 0.1},
    "leonardo": {"rates": {"500": 0.4}, "job_delay_s": 0.2},
}


def demo_emulator(seed: int = DEFAULT_SEED, *, faults: dict[str, Any] | None = None
                  ) -> Emulator:
    """The emulator with the demo's faults (Gemini rate-limited, Leonardo flaky, one refusal),
    accepting the key :data:`KEY`. Serve it with ``serve_in_thread``."""
    from .emulator import Emulator

    return Emulator(faults=FAULTS if faults is None else faults, api_keys=KEY, seed=seed)


def build_demo_chain(base_url: str, *, api_key: str = KEY, name: str = "demo",
                     on_event: Callable[[Event], None] | None = None,
                     policy: Policy | None = None, state: str | None = None) -> Chain:
    """The canonical chain (Gemini, Leonardo, OpenAI) of the real adapters, pointed at the
    emulator served at ``base_url`` and using the emulator's key. Never a real vendor.
    ``state``: a ``redis://`` URL to share breakers and limits (``fallback-chain worker``)."""
    import warnings

    from fallback_chain.providers import GeminiProvider, LeonardoProvider, OpenAIProvider

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifecycle notices are not the point of the demo
        providers = [
            GeminiProvider(model="gemini-2.5-flash-image", api_key=api_key, base_url=base_url),
            LeonardoProvider(api_key=api_key, base_url=base_url, poll_initial_s=0.1,
                             poll_interval_s=0.1),
            OpenAIProvider(model="gpt-image-2", api_key=api_key, base_url=f"{base_url}/v1"),
        ]
    policy = policy or Policy(attempt_timeout_s=30, backoff_initial_s=0.05)
    return Chain(providers, name=name, policy=policy, on_event=on_event, log=False, state=state)


def build_chain(base_url: str) -> Chain:
    """Former name of :func:`build_demo_chain`."""
    return build_demo_chain(base_url)


def demo_briefs(count: int) -> list[str]:
    """``count`` briefs, cycling through :data:`BRIEFS`."""
    return [BRIEFS[i % len(BRIEFS)] for i in range(count)]


# ------------------------------------------------------------------------------ running

@dataclass
class DemoItem:
    """One brief and what became of it."""

    index: int
    prompt: str
    result: ChainResult | None = None
    error: ChainError | None = None
    saved: dict[str, Any] = field(default_factory=dict)  # image paths and the sidecar

    @property
    def attempts(self) -> list[Attempt]:
        done = self.result if self.result is not None else self.error
        return list(done.attempts) if done is not None else []

    @property
    def cost_usd(self) -> float:
        return sum(a.cost_usd for a in self.attempts)

    def to_dict(self) -> dict[str, Any]:
        from .cli._output import attempt_dict, clean, error_kind

        data: dict[str, Any] = {"index": self.index, "prompt": self.prompt,
                                "ok": self.result is not None, "cost_usd": self.cost_usd}
        if self.result is not None:
            data.update(provider=self.result.provider, model=self.result.model,
                        latency_s=self.result.latency_s, **self.saved)
        elif self.error is not None:
            data.update(error=error_kind(self.error)[0], message=clean(self.error.message))
            if isinstance(self.error, ContentPolicyError):
                data.update(provider=self.error.provider, reason=clean(self.error.reason))
        data["attempts"] = [attempt_dict(a) for a in self.attempts]
        return data


async def generate_all(chain: Chain, briefs: list[str], out: Path,
                       on_item: Callable[[DemoItem], None] | None = None) -> list[DemoItem]:
    """Generate ``briefs`` one after another; save each delivery with its sidecar in ``out``."""
    from .cli._output import save_images
    from .request import ImageRequest

    items: list[DemoItem] = []
    async with chain:
        for i, brief in enumerate(briefs):
            item = DemoItem(i, brief)
            request = ImageRequest(prompt=brief, size="1024x1024")
            started = time.time()
            try:
                item.result = await chain.agenerate(request)
            except ChainError as exc:
                item.error = exc
            if item.result is not None:
                item.saved = save_images(item.result, request, out, f"{i:03d}", chain=chain.name,
                                         started=started)
            items.append(item)
            if on_item is not None:
                on_item(item)
    return items


def summary(items: list[DemoItem]) -> dict[str, Any]:
    """Totals and per-provider counts of a demo run."""
    providers: dict[str, dict[str, Any]] = {}
    for item in items:
        for a in item.attempts:
            row = providers.setdefault(a.provider, {"calls": 0, "delivered": 0, "failed": {},
                                                    "skipped": 0, "cost_usd": 0.0})
            row["cost_usd"] += a.cost_usd
            if not a.outcome.was_called:
                row["skipped"] += 1
            else:
                row["calls"] += 1
                if a.outcome == "success":
                    row["delivered"] += 1
                else:
                    row["failed"][a.outcome.value] = row["failed"].get(a.outcome.value, 0) + 1
    spent = sum(i.cost_usd for i in items)
    wasted = sum(a.cost_usd for i in items for a in i.attempts if a.outcome != "success")
    return {"briefs": len(items), "delivered": sum(1 for i in items if i.result is not None),
            "refused": sum(1 for i in items if isinstance(i.error, ContentPolicyError)),
            "failed": sum(1 for i in items if i.error is not None
                          and not isinstance(i.error, ContentPolicyError)),
            "calls": sum(r["calls"] for r in providers.values()),
            "cost_usd": spent, "wasted_usd": wasted, "providers": providers}


def run(out: Path = DEFAULT_OUT, count: int = len(BRIEFS), seed: int = DEFAULT_SEED, *,
        as_json: bool = False) -> int:
    """The whole demo; returns the exit code (0 when at least one brief was delivered)."""
    from .cli._output import console, print_json
    from .emulator import serve_in_thread

    out.mkdir(parents=True, exist_ok=True)
    screen = console()
    with serve_in_thread(demo_emulator(seed)) as base_url:
        if not as_json:
            _line(screen, f"emulated vendor APIs on {base_url} (no real vendor is called)\n")
        on_item = None if as_json else (lambda item: _report(screen, item, out))
        with _emulated_ledger() as ledger:  # `fallback-chain cost report --emulated`
            items = asyncio.run(generate_all(build_demo_chain(base_url, on_event=ledger),
                                             demo_briefs(count), out, on_item))
    totals = summary(items)
    if as_json:
        print_json({"emulated": True, "emulator": base_url, "out": str(out),
                    "summary": totals, "items": [i.to_dict() for i in items]})
    else:
        _print_summary(screen, totals, out)
    return 0 if totals["delivered"] else 1


def _emulated_ledger() -> Any:
    from .cli._output import emulated_ledger_path
    from .cost.ledger import Ledger

    return Ledger(emulated_ledger_path())


def _line(screen: Any, text: str) -> None:
    screen.print(text, markup=False, highlight=False, soft_wrap=True)


def _report(screen: Any, item: DemoItem, out: Path) -> None:
    from .cli._output import clean

    trail = " -> ".join(f"{a.provider}:{a.outcome.value}" for a in item.attempts)
    res = item.result
    if res is not None:
        where = item.saved["images"][0]["path"] if item.saved else str(out)
        status = (f"delivered by {res.provider}:{res.model} in {res.latency_s:.2f}s, "
                  f"${res.cost_usd:.4f} -> {where}")
    else:
        why = "refused" if isinstance(item.error, ContentPolicyError) else "not delivered"
        status = f"{why}: {clean(item.error.message if item.error else '')}"
    _line(screen, f"[{item.index:03d}] {item.prompt}\n      {trail}\n      {status}")


def _print_summary(screen: Any, totals: dict[str, Any], out: Path) -> None:
    from rich.table import Table

    from .cli._output import usd

    _line(screen, f"\n{totals['delivered']} of {totals['briefs']} delivered with "
                  f"{totals['calls']} calls; ${totals['cost_usd']:.4f} spent "
                  f"(${totals['wasted_usd']:.4f} on attempts that delivered nothing); "
                  f"images and sidecars in {out}/")
    table = Table(title="per provider", title_justify="left")
    for col in ("provider", "calls", "delivered", "failed calls", "skipped", "spent"):
        table.add_column(col, justify="left" if col in ("provider", "failed calls")
                         else "right")
    for name, row in totals["providers"].items():
        failed = ", ".join(f"{k} {v}" for k, v in sorted(row["failed"].items())) or "-"
        table.add_row(name, str(row["calls"]), str(row["delivered"]), failed,
                      str(row["skipped"]), usd(row["cost_usd"]))
    print_table(screen, table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fallback_chain.demo",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"folder for images and sidecars (default: {DEFAULT_OUT})")
    parser.add_argument("--count", type=int, default=len(BRIEFS), help="number of briefs")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help="seed of the emulated faults")
    parser.add_argument("--json", action="store_true", dest="as_json",
                        help="print one JSON document instead of text")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    return run(args.out, args.count, args.seed, as_json=args.as_json)


if __name__ == "__main__":
    sys.exit(main())
