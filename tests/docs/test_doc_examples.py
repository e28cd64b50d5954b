"""Every example in README.md and docs/**/*.md runs as written, or is a marked fragment that is
still syntax-checked; printed output quoted in a page is compared (rules: docs/README.md).

The examples of one page run in page order in one folder (as a reader follows them); pages run
side by side (``PAGES_AT_ONCE``), since most of an example's time is spent waiting on its
emulator or subprocess."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from doc_examples import ROOT, Example, all_examples
from doc_runners import CHECKS

EXAMPLES = all_examples()
PAGES_AT_ONCE = 3


def _run_page(examples: list[Example], workdir: Path,
              futures: dict[str, Future[None]]) -> None:
    shutil.copytree(ROOT / "examples", workdir / "examples")
    for example in examples:
        try:
            CHECKS[example.kind](example, workdir)
        except BaseException as exc:  # reported by the example's own test
            futures[example.id].set_exception(exc)
        else:
            futures[example.id].set_result(None)


@pytest.fixture(scope="session")
def doc_results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[Callable[[Example], Future[None]]]:
    """Starts every selected page once; each test waits for its own example's result."""
    selected = [item.callspec.params["example"] for item in request.session.items
                if getattr(item, "originalname", "") == "test_doc_example"]
    pages: dict[str, list[Example]] = {}
    for example in selected:
        pages.setdefault(example.path, []).append(example)
    futures: dict[str, Future[None]] = {e.id: Future() for e in selected}
    pool = ThreadPoolExecutor(max_workers=PAGES_AT_ONCE)
    # the slowest pages first, so that they overlap the many quick ones
    for path, examples in sorted(pages.items(), key=lambda kv: -len(kv[1])):
        folder = tmp_path_factory.mktemp(path.replace("/", "_").replace(".md", ""))
        pool.submit(_run_page, examples, folder, futures)
    yield lambda example: futures[example.id]
    pool.shutdown(wait=True, cancel_futures=True)


def test_the_pages_have_examples_of_every_kind():
    kinds = Counter(e.kind for e in EXAMPLES)
    assert {"python", "toml", "json", "shell"} <= set(kinds), kinds


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.id for e in EXAMPLES])
def test_doc_example(example: Example,
                     doc_results: Callable[[Example], Future[None]]) -> None:
    doc_results(example).result(timeout=600)
