"""Run every ``benchmarks/bench_*.py`` and write ``benchmarks/results.md`` and ``results.json``.

Each module defines ``run(quick: bool) -> dict`` returning::

    {"title": "...", "rows": [{"case": "...", "metric": value, ...}, ...], "notes": "..."}

Usage: ``python -m benchmarks [--quick] [NAME ...]`` (names without the ``bench_`` prefix, or
the issue's case letters: ``a``-``d`` run those cases of ``overhead``, ``e`` is ``router``, ``f``
``import`` and ``g`` ``memory``; ``python -m benchmarks c d`` runs cases c and d only).
Results of benchmarks not run this time are kept from the previous results file.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def machine() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for pkg in ("fallback-chain", "pydantic", "pydantic-core", "pybreaker", "httpx", "openai",
                "google-genai", "litellm", "pillow", "zlib-ng"):
        with contextlib.suppress(PackageNotFoundError):
            versions[pkg] = version(pkg)
    processor = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                processor = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "processor": processor,
            "load average": None if load is None else [round(x, 2) for x in load],
            "versions": versions, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = ["# Benchmark results", "",
             f"Python {m['python']} on {m['platform']}, {m['cpus']} CPUs"
             f" ({m.get('processor', '?')}); run {m['date']}"
             + (f", load average {m['load average']} when it started (other work shares the "
                "machine: compare ratios measured in one run, not absolute times)"
                if m.get("load average") else "") + ".", "",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()), "",
             "Produced by `python -m benchmarks` (see README). Do not edit by hand.", ""]
    for name in sorted(results["benchmarks"]):
        b = results["benchmarks"][name]
        lines += [f"## {b['title']}", ""]
        if b.get("run"):
            lines += [f"Run {b['run']['date']}, load average {b['run']['load average']} "
                      "when it started.", ""]
        rows = b.get("rows", [])
        if rows:
            cols = list(dict.fromkeys(k for r in rows for k in r))
            lines.append("| " + " | ".join(cols) + " |")
            lines.append("|" + "---|" * len(cols))
            for r in rows:
                lines.append("| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |")
            lines.append("")
        if b.get("notes"):
            lines += [b["notes"], ""]
    return "\n".join(lines)


#: The issue's case letters: a-d are cases of the overhead benchmark, e-g whole benchmarks.
CASE_LETTERS = {"a": "overhead", "b": "overhead", "c": "overhead", "d": "overhead",
                "e": "router", "f": "import", "g": "memory"}


def select(names: list[str]) -> tuple[list[str], list[str]]:
    """Benchmark names to run (in the order given, once each) and the overhead cases asked for
    by letter (empty: all of them, or overhead is not run)."""
    benchmarks = [CASE_LETTERS.get(n, n) for n in names]
    cases = sorted({n for n in names if CASE_LETTERS.get(n) == "overhead"})
    if "overhead" in names:  # asked for by name: every case
        cases = []
    return list(dict.fromkeys(benchmarks)), cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    args = parser.parse_args(argv)
    available = sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    names, cases = select(args.names or available)
    unknown = sorted(set(names) - set(available))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; available: {available}, or the case "
                     f"letters {sorted(CASE_LETTERS)}")
    out_json = HERE / "results.json"
    previous = json.loads(out_json.read_text()) if out_json.exists() else {}
    results = {"machine": machine(), "benchmarks": dict(previous.get("benchmarks", {}))}
    failed: list[str] = []
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        run_on = machine()
        mod = importlib.import_module(f"benchmarks.bench_{name}")
        try:
            if name == "overhead" and cases:
                result = mod.run(quick=args.quick, cases=cases)
            else:
                result = mod.run(quick=args.quick)
        except Exception:  # one benchmark's failure must not lose the others' results
            traceback.print_exc()
            print(f"  {name} FAILED; its previous results are kept", file=sys.stderr)
            failed.append(name)
            continue
        result["run"] = {"date": run_on["date"], "load average": run_on["load average"]}
        results["benchmarks"][name] = result
        print(f"  {name} done in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        # written after each benchmark, so an interrupted run keeps what it measured
        out_json.write_text(json.dumps(results, indent=2) + "\n")
        (HERE / "results.md").write_text(render(results))
    print(f"wrote {HERE / 'results.md'} and {out_json}", file=sys.stderr)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0

if __name__ == "__main__":
    raise SystemExit(main())
