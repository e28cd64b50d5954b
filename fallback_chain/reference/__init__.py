"""The reference pages of ``docs/reference/``, generated from the code so that they cannot
drift from it: outcomes and the default policy, ``Policy`` fields, ``Chain`` keywords, events,
the command line, vendors, adapter options, the experiment file and the versions of the
files the product writes.

Regenerate them with one command, ``scripts/gen-reference`` (``python -m
fallback_chain.reference``); ``--check`` reports the pages that differ (CI runs the same check
in ``tests/docs/test_reference_pages.py``). This package is a tool of the repository: nothing
in the library imports it.
"""

from __future__ import annotations

from collections.abc import Callable

HEADER = ("<!-- Generated from the code by scripts/gen-reference "
          "(python -m fallback_chain.reference). Do not edit: edit the code, then regenerate. -->")


def builders() -> dict[str, Callable[[], str]]:
    """Every page, by file name (imported here so that ``--help`` style uses stay cheap)."""
    from .cli_page import cli_page
    from .core_pages import chain_page, events_page, outcomes_page, policy_page
    from .files_page import files_page
    from .sim_page import experiment_page
    from .vendor_pages import adapters_page, vendors_page

    return {
        "outcomes.md": outcomes_page,
        "policy.md": policy_page,
        "chain.md": chain_page,
        "events.md": events_page,
        "cli.md": cli_page,
        "vendors.md": vendors_page,
        "adapters.md": adapters_page,
        "experiment.md": experiment_page,
        "files.md": files_page,
    }


TITLES = {
    "outcomes.md": "Outcomes, default actions and HTTP statuses",
    "policy.md": "`Policy` fields and defaults",
    "chain.md": "`Chain(...)` keywords",
    "events.md": "Events and their fields",
    "cli.md": "The command line",
    "vendors.md": "Vendors and their environment variables",
    "adapters.md": "Adapter options",
    "experiment.md": "The experiment file",
    "files.md": "Files the product writes, and their versions",
}


def index_page() -> str:
    lines = [HEADER, "", "# Reference", "",
             "Generated from the code; regenerate with `scripts/gen-reference` after changing "
             "what a page describes (a test fails while a page differs from the code).", ""]
    lines += [f"- [{TITLES[name]}]({name})" for name in builders()]
    return "\n".join(lines) + "\n"


def render_all() -> dict[str, str]:
    """``{file name: Markdown}`` for every page of ``docs/reference/``, ``README.md`` included."""
    pages = {name: build() for name, build in builders().items()}
    pages["README.md"] = index_page()
    return pages
