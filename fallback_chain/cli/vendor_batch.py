"""``fallback-chain batch INPUT --dry-run --vendor-batch``: the usual dry run (validation and
the real-time price table), then both modes side by side."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fallback_chain.batch.vendor.pricing import VendorBatchPrice
    from fallback_chain.cost.batch import ChainStep


def dry_run_both_ways(steps: list[ChainStep], label: str, input: str, out: str | None,
                      input_format: str | None, options: dict[str, Any],
                      rates: dict[str, float], as_json: bool) -> int:
    from fallback_chain.batch.pricing import dry_run
    from fallback_chain.batch.report import print_dry_run
    from fallback_chain.batch.vendor.pricing import price_both_ways

    from ._output import print_json

    remote = options if "://" in input else {}
    report = dry_run(steps, input, out=out, input_format=input_format, input_options=remote,
                     storage_options=options, failure_rates=rates)
    both = price_both_ways(steps, input, out=out, input_format=input_format,
                           input_options=remote, storage_options=options)
    if as_json:
        print_json({"chain": label, "dry_run": True, **report.to_dict(),
                    "vendor_batch": both.to_dict()})
    else:
        print_dry_run(report)
        print_both_ways(both)
    return 0 if not report.invalid else 1


def print_both_ways(price: VendorBatchPrice) -> None:
    from rich.console import Console
    from rich.table import Table

    from fallback_chain.richtable import print_table

    out = Console(highlight=False)
    if price.batch_provider is None:
        out.print("vendor batch: no provider of the chain has a batch API; every row would "
                  "run real-time")
        return
    table = Table(title=f"real-time vs vendor batch ({price.batch_provider}), expected USD",
                  title_justify="left")
    for column in ("mode", "rows", "expected", "per image"):
        table.add_column(column, justify="left" if column == "mode" else "right")
    images = max(price.images, 1)
    table.add_row("real-time (the chain)", f"{price.items:,}", f"${price.realtime_usd:,.4f}",
                  f"${price.realtime_usd / images:,.4f}")
    table.add_row(f"vendor batch ({price.eligible:,} in jobs, rest real-time)",
                  f"{price.items:,}", f"${price.vendor_batch_usd:,.4f}",
                  f"${price.vendor_batch_usd / images:,.4f}")
    print_table(out, table)
    if price.saving_pct is not None:
        out.print(f"saving: {price.saving_pct:.1f}% (batch price: {price.source}, "
                  f"as of {price.as_of})", markup=False)
    for why, n in sorted(price.ineligible.items()):
        out.print(f"  {n:,} row(s) stay real-time: {why}", markup=False)
