"""A small batch output folder made with FakeProviders (fast, no emulator), for the report
tests: a delivered item whose prompt holds markup, one whose duplicate is reused, one refused
on content grounds, and a planted key in a place a careless report would print."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from fallback_chain import Chain
from fallback_chain.batch.engine import BatchOptions, run_batch
from fallback_chain.providers import FakeProvider

PLANTED = "sk-PLANTED-do-not-print-4b7e19c2d8a0"
XSS = '<script>window.PWNED=1</script><img src=x onerror="window.PWNED=2">'

ROWS = [
    {"id": "a-cat", "prompt": f"a cat {XSS}"},
    {"id": "b-dog", "prompt": "a dog on a beach"},
    {"id": "c-dog-again", "prompt": "a dog on a beach"},
    {"id": "d-refused", "prompt": "something forbidden"},
    {"id": "e-boat", "prompt": "a boat"},
]


def make_batch(out: Path) -> Path:
    """Run the batch into ``out``; then give two sidecars a tenant and plant the key in an
    attempt message, as a vendor error echoing a header would."""
    source = out.parent / "input.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    chain = Chain([FakeProvider("alpha", ["ok", *[500] * 12], blocked_terms=["forbidden"],
                                 image_size=(96, 64)),
                   FakeProvider("beta", image_size=(64, 96))], log=False)

    async def go() -> None:
        async with chain:
            await run_batch(chain, str(source), str(out),
                            BatchOptions(handle_signals=False, fsync=False, concurrency=1))

    asyncio.run(go())
    for name, user, project in (("a-cat", "ana", "blog"), ("b-dog", "ben", "shop")):
        path = out / f"{name}.json"
        car = json.loads(path.read_text())
        car["user"], car["project"] = user, project
        car["attempts"][0]["message"] = f"echoed header Authorization: Bearer {PLANTED}"
        path.write_text(json.dumps(car))
    return out
