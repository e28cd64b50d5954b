"""``batch INPUT --out DIR_OR_S3 --queue redis://...``: the command-line side of a queued batch
(see :mod:`fallback_chain.distributed.coordinator`): progress on stderr, the same summary and
exit codes as a local batch, and the pay-twice window the workers measured."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .batch import InputFormat, ProgressMode


def run_queued(queue: str, input: str, out: str | None, chain: str | None,
               failures: str | None, input_format: InputFormat | None,
               options: dict[str, Any], fsync: bool, progress: ProgressMode,
               as_json: bool) -> int:
    from fallback_chain.batch.progress import make_reporter
    from fallback_chain.batch.report import print_summary
    from fallback_chain.distributed.coordinator import QueueOptions, run_queued_batch

    from ._output import print_json
    from .batch import exit_code

    if out is None:
        raise ValueError("--queue needs --out DIR_OR_S3 (a folder every worker can reach, "
                         "or an s3:// URL)")
    opts = QueueOptions(chain=chain, failures=failures,
                        input_format=input_format.value if input_format else None,
                        storage_options=options,
                        input_options=options if "://" in input else {}, fsync=fsync)
    reporter = make_reporter(progress.value)
    run = asyncio.run(run_queued_batch(queue, input, out, opts, reporter=reporter))
    window = _window(run.windows_s)
    if as_json:
        print_json({"queue": True, "job": run.job, "sent": run.sent,
                    "pay_twice_window_s": window, **run.summary.to_dict()})
    else:
        print_summary(run.summary)
        if window["count"]:
            print(f"job {run.job}: {run.sent} items sent to the workers; pay-twice window "
                  f"(vendor answer -> sidecar written) p50 {window['p50'] * 1000:.1f} ms, "
                  f"max {window['max'] * 1000:.1f} ms")
    return exit_code(run.summary)


def _window(samples: list[float]) -> dict[str, Any]:
    if not samples:
        return {"count": 0, "p50": None, "p99": None, "max": None}
    ordered = sorted(samples)
    return {"count": len(ordered), "p50": round(ordered[len(ordered) // 2], 6),
            "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 6),
            "max": round(ordered[-1], 6)}
