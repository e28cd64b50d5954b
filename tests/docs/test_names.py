"""One name per thing across the docs: the spellings that drifted are gone (issue 26)."""

from __future__ import annotations

import re

import pytest
from doc_examples import ROOT, doc_files

#: A drifted spelling and the one name the project uses instead.
RETIRED = {
    r"\bmodel catalogue\b|\bcapability catalogue\b|\bboth catalogues\b":
        "'the model records' (providers/<vendor>/models.json) or 'the price catalogue'",
    r"\bledger\.sqlite\b|\bspend-ledger\b|\bfallback-chain\.db\b":
        "the ledger file names fallback-chain-ledger.db / fallback-chain-emulated-ledger.db",
    r"\b[A-Z_]+_[0-9]\.png\b|\bID-[0-9]\.png\b": "ID~1.png, ID~2.png for several images",
}


@pytest.mark.parametrize("pattern", sorted(RETIRED))
def test_the_docs_use_one_name_per_thing(pattern):
    found = []
    for path in doc_files():
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(pattern, line, flags=re.I):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:90]}")
    assert not found, f"use {RETIRED[pattern]}:\n" + "\n".join(found)
