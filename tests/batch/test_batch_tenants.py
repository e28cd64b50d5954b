"""Tenants in a batch (issue 19): the ``user`` / ``project`` columns reach the request and its
quota, and two tenants' identical rows never share images, sidecars or cache entries, so no
sidecar of one tenant carries another's id."""

from __future__ import annotations

import csv
from pathlib import Path

from batch_helpers import fake_chain, run, sidecar, write_csv

from fallback_chain import Chain
from fallback_chain.cost import Limit, Quotas
from fallback_chain.providers import FakeProvider


def test_identical_rows_of_two_tenants_are_not_shared(tmp_path: Path) -> None:
    rows = [{"id": "a1", "prompt": "a fox", "size": "64x64", "user": "alice"},
            {"id": "a2", "prompt": "a fox", "size": "64x64", "user": "alice"},
            {"id": "b1", "prompt": "a fox", "size": "64x64", "user": "bob"},
            {"id": "n1", "prompt": "a fox", "size": "64x64", "user": ""}]
    provider = FakeProvider("p", latency_s=0.01)
    out = tmp_path / "out"
    summary = run(fake_chain(provider), write_csv(tmp_path / "in.csv", rows), out,
                  concurrency=1, project="acme")
    assert provider.calls == 3  # alice once (shared by her two rows), bob once, no-user once
    assert (summary.delivered, summary.shared) == (4, 1)
    assert sidecar(out, "a2")["shared"]["from_id"] == "a1"
    bob = sidecar(out, "b1")
    assert (bob["user"], bob["project"], bob["shared"]) == ("bob", "acme", None)
    assert "alice" not in (out / "b1.json").read_text()
    assert "user" not in sidecar(out, "n1")


def test_the_cache_is_not_shared_between_tenants(tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")
    source = write_csv(tmp_path / "in.csv", [{"id": "x", "prompt": "a fox", "size": "64x64"}])
    run(fake_chain(FakeProvider("p")), source, tmp_path / "o1", cache=cache, user="alice")
    second = FakeProvider("p")
    run(fake_chain(second), source, tmp_path / "o2", cache=cache, user="bob")
    assert second.calls == 1  # alice's cached image is not bob's
    assert "alice" not in (tmp_path / "o2" / "x.json").read_text()
    third = FakeProvider("p")
    run(fake_chain(third), source, tmp_path / "o3", cache=cache, user="alice")
    assert third.calls == 0  # alice's own cache entry serves her


def test_a_tenant_over_quota_fails_its_rows_and_the_others_are_served(tmp_path: Path) -> None:
    rows = [{"id": f"{u}{i}", "prompt": f"brief {i}", "size": "64x64", "user": u}
            for u in ("alice", "bob") for i in range(3)]
    chain = Chain([FakeProvider("p")], log=False,
                  quotas=Quotas(per_user=Limit(daily_images=3),
                                overrides={"alice": Limit(daily_images=1)}))
    out = tmp_path / "out"
    summary = run(chain, write_csv(tmp_path / "in.csv", rows), out, concurrency=1)
    assert (summary.delivered, summary.failed) == (4, 2)
    assert [(out / f"{u}{i}.png").is_file() for u in ("alice", "bob") for i in range(3)] == [
        True, False, False, True, True, True]
    with (out / "failures.csv").open() as fh:
        failed = list(csv.DictReader(fh))
    assert [r["id"] for r in failed] == ["alice1", "alice2"]
    assert all("daily_images quota of user 'alice'" in r["error"] for r in failed)
