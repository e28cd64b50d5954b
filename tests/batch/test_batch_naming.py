"""Output names derived from ids stay inside the output folder, whatever the id."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from batch_helpers import fake_chain, items, run, write_jsonl
from hypothesis import given, settings
from hypothesis import strategies as st

from fallback_chain.batch.naming import check_part, image_name, is_plain, safe_name
from fallback_chain.batch.storage import Storage

HOSTILE = ["../../etc/x", "/abs", "/etc/passwd", "C:\\x", "C:x", "..", ".", "a/../../b",
           "a\0b", "\0", "x" * 1000, "..\\..\\win", "spaced id", "~", "con", "NUL.txt",
           "-rf", ".hidden", "name.", "ünïcødé/../x", "a\nb", "%2e%2e%2fetc"]


@pytest.mark.parametrize("item_id", HOSTILE)
def test_hostile_ids_become_one_plain_component(item_id: str) -> None:
    name = safe_name(item_id)
    assert check_part(name) == name
    assert name not in (".", "..") and not name.startswith((".", "-"))
    assert "/" not in name and "\\" not in name and "\0" not in name and ":" not in name
    assert len(name) <= 100
    assert os.path.basename(name) == name
    assert name.isascii()


def test_plain_ids_are_kept_and_the_rest_get_a_hash() -> None:
    assert safe_name("item-001") == "item-001"
    assert safe_name("a.b_c-d") == "a.b_c-d"
    assert is_plain("item-001") and not is_plain("../x")
    name = safe_name("../../etc/x")
    assert name.startswith("etc_x~") and len(name.split("~")[1]) == 16
    assert safe_name("a/b") != safe_name("a_b")  # mangled names carry '~', plain ones never
    assert safe_name("a b") != safe_name("a?b")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=300), min_size=2, max_size=20, unique=True))
def test_any_ids_give_distinct_safe_names(ids: list[str]) -> None:
    names = [safe_name(i) for i in ids]
    assert len(set(names)) == len(names)
    for name in names:
        check_part(name)
        for index, count in ((0, 1), (1, 3)):
            check_part(image_name(name, index, count, ".png"))


@pytest.mark.parametrize("part", ["", ".", "..", "a/b", "a\\b", "a\0", "c:x", "x" * 256])
def test_storage_refuses_unsafe_components(tmp_path: Path, part: str) -> None:
    storage = Storage(str(tmp_path / "out"))
    try:
        with pytest.raises(ValueError, match="unsafe path component"):
            storage.path(part)
    finally:
        storage.close()


def test_hostile_ids_cannot_write_outside_the_output_folder(tmp_path: Path) -> None:
    root = tmp_path / "sandbox"
    out = root / "a" / "b" / "out"
    root.mkdir()
    source = write_jsonl(root / "in.jsonl", [
        {"id": item_id, "prompt": f"brief {i}", "size": "64x64"}
        for i, item_id in enumerate(HOSTILE)])
    before = {p for p in tmp_path.rglob("*")}
    summary = run(fake_chain(), source, out, concurrency=4)
    assert summary.delivered == len(HOSTILE)
    created = {p for p in tmp_path.rglob("*")} - before
    outside = [p for p in created if out not in p.parents and p != out
               and p not in (root / "a", root / "a" / "b")]
    assert outside == []
    assert all(p.parent == out for p in created if p.is_file())
    assert not Path("/abs").exists() and not Path("/abs.png").exists()
    records = items(out)
    assert sorted(r["id"] for r in records) == sorted(HOSTILE)
    for r in records:  # every file named in the manifest is directly in the output folder
        for f in [*r["files"], r["sidecar"]]:
            assert (out / f).is_file() and (out / f).parent == out
