"""Every example in README.md and docs/**/*.md runs as written, or is a marked fragment that is
still syntax-checked; printed output quoted in a page is compared (rules: docs/README.md)."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
from doc_examples import ROOT, Example, all_examples
from doc_runners import CHECKS

EXAMPLES = all_examples()
_WORKDIRS: dict[str, Path] = {}


@pytest.fixture
def workdir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder per page, shared by its examples in page order (as a reader follows them),
    holding a copy of the repository's examples/ folder."""
    example: Example = request.node.callspec.params["example"]
    if example.path not in _WORKDIRS:
        folder = tmp_path_factory.mktemp(example.path.replace("/", "_").replace(".md", ""))
        shutil.copytree(ROOT / "examples", folder / "examples")
        _WORKDIRS[example.path] = folder
    return _WORKDIRS[example.path]


def test_the_pages_have_examples_of_every_kind():
    kinds = Counter(e.kind for e in EXAMPLES)
    assert {"python", "toml", "json", "shell"} <= set(kinds), kinds


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.id for e in EXAMPLES])
def test_doc_example(example: Example, workdir: Path) -> None:
    CHECKS[example.kind](example, workdir)
