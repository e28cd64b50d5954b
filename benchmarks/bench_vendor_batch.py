"""Vendor batch (``--vendor-batch``) against real-time: cost per delivered image on the same
briefs (``examples/briefs.csv``, 12 rows, 13 images), through the demo chain (Gemini, Leonardo,
OpenAI: the real adapters) against the emulator served on loopback.

* **real-time**: every row through the chain.
* **vendor batch**: eligible rows in one Gemini Batch Mode job (the row asking for two images
  and the repeated row stay real-time), the rest through the chain.
* **vendor batch, 30 % item errors + a garbled line**: the items the batch did not deliver go
  real-time (the safety net's price).
* **vendor batch, deadline missed**: the job never finishes; after the deadline (6 h on a
  fast-forward clock) it is cancelled with half its items done; the rest go real-time.

Costs are what the sidecars say: a row shared from an identical one costs nothing, and the
batch price comes from the model record, with its source. The emulator bills nothing real.
Polls run on a fast-forward clock.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from fallback_chain.batch.engine import BatchOptions, run_batch
from fallback_chain.batch.stats import BatchSummary
from fallback_chain.batch.vendor import VendorBatchOptions
from fallback_chain.clock import FastForwardClock
from fallback_chain.demo import build_demo_chain
from fallback_chain.emulator import Emulator, serve_in_thread

BRIEFS = Path(__file__).resolve().parents[1] / "examples" / "briefs.csv"
KEY = "bench-key"


def _case(url: str, out: Path, vendor: VendorBatchOptions | None) -> BatchSummary:
    async def go() -> BatchSummary:
        chain = build_demo_chain(url, api_key=KEY)
        async with chain:
            return await run_batch(chain, str(BRIEFS), str(out), BatchOptions(
                handle_signals=False, fsync=False, vendor_batch=vendor))

    return asyncio.run(go())


def _row(name: str, summary: BatchSummary, out: Path, emu: Emulator) -> dict[str, Any]:
    sidecars = [s for s in (json.loads(p.read_text()) for p in out.glob("*.json"))
                if isinstance(s, dict) and "images" in s]
    cost = sum(float(s.get("cost_usd") or 0.0) for s in sidecars)
    batched = [s for s in sidecars if s.get("vendor_batch")]
    images = sum(len(s["images"]) for s in sidecars)
    realtime_calls = emu.log.count(endpoint="generate")
    return {"case": name, "rows": summary.rows, "delivered": summary.delivered,
            "images": images, "via vendor batch": len(batched),
            "real-time calls": realtime_calls,
            "batch jobs": emu.log.count(endpoint="batch_create"),
            "cost USD": round(cost, 4),
            "USD per delivered image": round(cost / images, 5) if images else None,
            "USD per image via the batch": round(
                sum(s["cost_usd"] for s in batched) / sum(len(s["images"]) for s in batched), 5)
            if batched else ""}


def run(quick: bool = False) -> dict[str, Any]:
    emu = Emulator(api_keys=KEY)
    rows = []
    cases: list[tuple[str, dict[str, Any] | None, float]] = [
        ("real-time", None, 0),
        ("vendor batch", {}, 6 * 3600),
        ("vendor batch, 30 % item errors + a garbled line",
         {"error_rate": 0.3, "malformed_lines": 1, "seed": 5}, 6 * 3600),
        ("vendor batch, deadline missed (6 h)", {"polls": 10**9, "done_fraction": 0.5},
         6 * 3600)]
    with serve_in_thread(emu) as url, tempfile.TemporaryDirectory() as tmp:
        for i, (name, faults, deadline) in enumerate(cases):
            emu.reset()
            emu.batches.configure(**(faults or {}))
            vendor = None if faults is None else VendorBatchOptions(
                deadline_s=deadline, poll_initial_s=60, poll_max_s=3600,
                clock=FastForwardClock())
            out = Path(tmp) / f"out{i}"
            summary = _case(url, out, vendor)
            rows.append(_row(name, summary, out, emu))
    base = rows[0]["USD per delivered image"]
    for row in rows:
        per = row["USD per delivered image"]
        row["vs real-time"] = f"{per / base:.0%}" if base and per is not None else ""
    return {"title": "Vendor batch vs real-time: cost per delivered image (examples/briefs.csv)",
            "rows": rows, "notes": __doc__.split("\n\n", 1)[1].strip() if __doc__ else ""}
