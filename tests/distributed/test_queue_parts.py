"""The parts of a queued batch, against a real redis-server and no worker process: the claim
(exclusive, fenced, renewed, released), outcomes counted once, one item served by
``ItemRunner`` (delivered, done, busy, failed), credentials kept out of the job, the message
round trip, and the worker options docs/distributed.md names."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from fallback_chain import Chain
from fallback_chain.batch.items import BatchItem
from fallback_chain.batch.naming import safe_name
from fallback_chain.distributed.coordinator import public_options
from fallback_chain.distributed.jobs import Jobs, JobSpec
from fallback_chain.distributed.lease import Claims, Renewer
from fallback_chain.distributed.message import from_message, to_message
from fallback_chain.distributed.runtime import WorkerRuntime, scope_of
from fallback_chain.distributed.serve import Busy, ItemRunner
from fallback_chain.providers import FakeProvider
from fallback_chain.request import ImageRequest

pytestmark = pytest.mark.redis
DOC = Path(__file__).resolve().parents[2] / "docs" / "distributed.md"


@pytest.fixture
def client(redis_url: str) -> Iterator[Redis]:
    redis = Redis.from_url(redis_url)
    yield redis
    redis.close()


def item(n: int, prompt: str = "a fox") -> BatchItem:
    item_id = f"item-{n}"
    return BatchItem(item_id, safe_name(item_id), n + 1,
                     ImageRequest(prompt=f"{prompt} {n}", size="64x64"), f"key-{n}",
                     {"id": item_id, "prompt": f"{prompt} {n}"})


def test_a_claim_is_exclusive_fenced_renewed_and_released(client: Redis) -> None:
    claims = Claims(client, "scope", lease_s=30)
    first = claims.acquire("a")
    assert first is not None and first.held()
    assert claims.acquire("a") is None  # held: no second holder
    assert 29 < claims.remaining_s("a") <= 30
    assert first.renew()
    client.delete(claims.key("a"))  # as if the lease expired
    assert not first.held() and not first.renew()
    second = claims.acquire("a")
    assert second is not None and second.token > first.token  # fencing: tokens only grow
    assert not first.release()  # the old holder cannot release the new claim
    assert second.held() and second.release() and claims.acquire("a") is not None


def test_the_renewer_marks_an_expired_claim_lost(client: Redis) -> None:
    claims = Claims(client, "scope", lease_s=30)
    claim = claims.acquire("b")
    assert claim is not None
    renewer = Renewer(0.01)
    try:
        renewer.add(claim)
        client.delete(claim.key)  # expired while its worker was paused
        for _ in range(500):
            if not renewer.still_held(claim):
                break
            renewer._stop.wait(0.01)
        assert not renewer.still_held(claim)
        assert not renewer.remove(claim)
    finally:
        renewer.close()


def test_an_outcome_is_counted_once(client: Redis) -> None:
    jobs = Jobs(client)
    assert jobs.record("j", "a", {"status": "delivered", "how": "generated"})
    assert not jobs.record("j", "a", {"status": "delivered", "how": "recovered"})
    assert jobs.record("j", "b", {"status": "failed", "how": "content_policy"})
    assert jobs.counts("j") == {"delivered": 1, "how:generated": 1, "failed": 1,
                                "how:content_policy": 1}
    assert jobs.outcome("j", "a") == {"status": "delivered", "how": "generated"}
    assert jobs.done("j") == 2


def test_credentials_never_travel_with_the_job() -> None:
    options = {"key": "AKIA", "secret": "s3cr3t", "token": "t", "anon": False,
               "client_kwargs": {"endpoint_url": "http://s3", "aws_secret_access_key": "x",
                                 "aws_access_key_id": "y", "region_name": "eu-west-1"}}
    assert public_options(options) == {"anon": False, "client_kwargs": {
        "endpoint_url": "http://s3", "region_name": "eu-west-1"}}


def test_a_message_round_trips_as_json() -> None:
    original = item(3)
    back = from_message(json.loads(json.dumps(to_message(original))))
    assert back == original
    with pytest.raises(ValueError, match="same fallback-chain"):
        from_message({**to_message(original), "v": 99})


class _Runtime:
    """A worker's runtime on a chain of fakes; the output in ``tmp``."""

    def __init__(self, url: str, tmp: Path, provider: FakeProvider) -> None:
        self.provider = provider
        self.rt = WorkerRuntime(url, lambda name: Chain([provider], log=False), lease_s=30,
                                hostname="test-worker", io_threads=2)
        self.spec = JobSpec("job-1", str(tmp / "out"), "input.jsonl", fsync=False)
        self.rt.jobs.create(self.spec)

    def run(self, it: BatchItem) -> str:
        return ItemRunner(self.rt).run(self.spec.job, to_message(it))


@pytest.fixture
def runtime(redis_url: str, tmp_path: Path) -> Iterator[_Runtime]:
    rt = _Runtime(redis_url, tmp_path, FakeProvider("fake", image_size=(64, 64),
                                                    script=["ok", "ok", "content_policy"]))
    yield rt
    rt.rt.close()


def test_an_item_is_generated_once_and_then_done(runtime: _Runtime, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert runtime.run(item(1)) == "delivered"
    sidecar = json.loads((out / "item-1.json").read_text())
    assert sidecar["worker"] == "test-worker" and (out / sidecar["images"][0]["file"]).exists()
    assert runtime.run(item(1)) == "done"  # redelivered: its outcome is recorded
    runtime.rt.redis.delete(Jobs.key("job-1", "results"))
    assert runtime.run(item(1)) == "recovered"  # no outcome, but its files are there
    assert runtime.provider.calls == 1
    assert len(runtime.rt.jobs.windows("job-1")) == 1


def test_a_claimed_item_is_busy_and_its_leftovers_are_removed(runtime: _Runtime,
                                                              tmp_path: Path) -> None:
    claims = Claims(runtime.rt.redis, scope_of(runtime.spec.out), lease_s=30)
    other = claims.acquire("item-2")
    assert other is not None
    with pytest.raises(Busy) as busy:
        runtime.run(item(2))
    assert 29 < busy.value.retry_in_s <= 30.1
    assert runtime.provider.calls == 0
    other.release()
    (tmp_path / "out").mkdir(exist_ok=True)
    (tmp_path / "out" / "item-2.webp").write_bytes(b"half")  # a killed attempt's image
    assert runtime.run(item(2)) == "delivered"
    assert not (tmp_path / "out" / "item-2.webp").exists()
    assert claims.acquire("item-2") is not None  # released at the end


def test_a_refused_item_is_recorded_failed_with_its_row(runtime: _Runtime) -> None:
    assert [runtime.run(item(n)) for n in (5, 6, 7)] == ["delivered", "delivered", "failed"]
    failed = runtime.rt.jobs.outcome("job-1", "item-7")
    assert failed is not None
    assert failed["reason"] == "content_policy" and failed["status"] == "failed"
    assert failed["row"] == {"id": "item-7", "prompt": "a fox 7"} and failed["line"] == 8
    assert runtime.rt.jobs.counts("job-1")["failed"] == 1


def test_the_documented_worker_options_exist() -> None:
    import typer
    from typer.main import get_command

    from fallback_chain.cli.worker import worker

    app = typer.Typer()
    app.command()(worker)
    names: set[str] = {opt for p in get_command(app).params for opt in p.opts}
    documented = set(re.findall(r"`(--[a-z-]+)", DOC.read_text()))
    batch_only = {"--out", "--queue", "--chain", "--cache", "--draft", "--json",
                  "--storage-option"}
    assert {"--queue", "--concurrency", "--config", "--emulated"} <= names
    assert documented - batch_only <= names, documented - batch_only - names




def test_the_manifest_and_failures_file_are_assembled_from_sidecars_and_outcomes(
        runtime: _Runtime, tmp_path: Path) -> None:
    import asyncio

    from fallback_chain.batch.failures import FailuresWriter
    from fallback_chain.batch.manifest import Manifest
    from fallback_chain.batch.stats import BatchStats
    from fallback_chain.batch.storage import Storage
    from fallback_chain.distributed.assemble import assemble

    items = [item(n) for n in (5, 6, 7, 8)]
    assert [runtime.run(it) for it in items[:3]] == ["delivered", "delivered", "failed"]
    out = tmp_path / "out"
    failures = FailuresWriter(str(out / "failures.csv"), "csv", ["id", "prompt"])
    stats = BatchStats()

    async def go() -> int:
        storage = Storage(str(out), fsync=False)
        manifest = Manifest(storage)
        manifest.open()
        try:
            return await assemble(iter(items), storage, manifest, runtime.rt.jobs, "job-1",
                                  stats, failures)
        finally:
            await manifest.close()
            storage.close()

    unfinished = asyncio.run(go())
    failures.close()
    assert unfinished == 1  # item-8 was never served
    records = [json.loads(line) for line in (out / "manifest.jsonl").open()]
    assert [(r["id"], r["status"]) for r in records] == [
        ("item-5", "delivered"), ("item-6", "delivered"), ("item-7", "failed")]
    assert records[0]["how"] == "generated" and records[0]["worker"] == "test-worker"
    assert records[2]["reason"] == "content_policy"
    rows = (out / "failures.csv").read_text().splitlines()
    assert rows[0] == "id,prompt,error" and rows[1].startswith("item-7,a fox 7,")
    assert (stats.delivered, stats.generated, stats.failed) == (2, 2, 1)
    assert stats.failed_by_reason == {"content_policy": 1} and stats.calls() == 3


def test_an_unexpected_error_fails_the_item_instead_of_losing_it(redis_url: str,
                                                                 tmp_path: Path) -> None:
    def no_chain(name: str | None) -> Chain:
        raise LookupError(f"no chain {name!r} in this worker's config")

    rt = WorkerRuntime(redis_url, no_chain, hostname="w", io_threads=1)
    try:
        spec = JobSpec("job-2", str(tmp_path / "out"), "input.jsonl", chain="nope")
        rt.jobs.create(spec)
        assert ItemRunner(rt).run("job-2", to_message(item(9))) == "failed"
        outcome = rt.jobs.outcome("job-2", "item-9")
        assert outcome is not None and outcome["reason"] == "error"
        assert "no chain 'nope'" in outcome["error"]
        claims = Claims(rt.redis, scope_of(spec.out))
        assert claims.acquire("item-9") is not None  # the claim was released
    finally:
        rt.close()
