"""Issue 27, findings 6 and 10: hostile output folders.

* Symbolic links in the output folder are never followed for a write: a ``manifest.jsonl``
  link makes the run refuse (its target untouched); a ``failures.csv`` link planted mid-run is
  replaced, its target never truncated; an image name that is a link is replaced.
* One run per output at a time: a local folder is locked with ``fcntl.flock`` (a second run,
  here another process, is refused with a message naming the holder's pid); an ``s3://``
  output with a lock object and a lease (refused while the lease runs, taken over after).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "batch"))
from batch_helpers import fake_chain, free_port, write_csv

from fallback_chain.batch.engine import BatchOptions, run_batch
from fallback_chain.batch.failures import FailuresWriter
from fallback_chain.batch.lock import LOCK_NAME, OutputLock, OutputLocked
from fallback_chain.batch.storage import Storage, StorageError
from fallback_chain.providers import FakeProvider

VICTIM = b"precious: do not touch\n"


def _run(source: Path, out: str, **options: Any) -> Any:
    chain = fake_chain(FakeProvider("p", image_size=(32, 32)))

    async def go() -> Any:
        async with chain:
            return await asyncio.wait_for(run_batch(chain, str(source), out, BatchOptions(
                concurrency=2, handle_signals=False, fsync=False, **options)), 30)
    return asyncio.run(go())


def _input(tmp: Path, bad: bool = False) -> Path:
    rows = [{"id": "a", "prompt": "a cat"}, {"id": "b", "prompt": "a dog"}]
    if bad:
        rows.append({"id": "c", "prompt": ""})  # an invalid row: a failures file is written
    return write_csv(tmp / "in.csv", rows)


# ------------------------------------------------------------------ symbolic links (finding 6)

def test_a_manifest_symlink_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_bytes(VICTIM)
    (out / "manifest.jsonl").symlink_to(victim)
    with pytest.raises(StorageError, match="symbolic link"):
        _run(_input(tmp_path), str(out))
    assert victim.read_bytes() == VICTIM


def test_a_failures_symlink_planted_mid_run_is_replaced_not_followed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    victim = tmp_path / "victim.txt"
    victim.write_bytes(VICTIM)
    stale = FailuresWriter.remove_stale

    def then_plant(self: FailuresWriter) -> None:  # after the start-of-run sweep
        stale(self)
        (out / "failures.csv").symlink_to(victim)

    monkeypatch.setattr(FailuresWriter, "remove_stale", then_plant)
    summary = _run(_input(tmp_path, bad=True), str(out))
    assert summary.invalid_rows == 1
    assert victim.read_bytes() == VICTIM
    written = out / "failures.csv"
    assert not written.is_symlink()
    assert "prompt" in written.read_text(encoding="utf-8")


def test_an_image_name_that_is_a_symlink_is_replaced(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_bytes(VICTIM)
    (out / "a.png").symlink_to(victim)
    _run(_input(tmp_path), str(out))
    assert victim.read_bytes() == VICTIM
    assert not (out / "a.png").is_symlink()


# ------------------------------------------------------------------ the lock (finding 10)

HOLDER = """
import sys
import time
from fallback_chain.batch.lock import OutputLock
from fallback_chain.batch.storage import Storage
lock = OutputLock(Storage(sys.argv[1]), "holder-run")
lock.acquire()
print("locked", flush=True)
sys.stdin.readline()
lock.release()
"""


def test_a_second_local_run_is_refused_naming_the_holder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    source = _input(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputLocked, match=f"pid {holder.pid} ") as caught:
            _run(source, str(out))
        assert "holder-run" in str(caught.value)
        assert not (out / "a.png").exists()  # nothing generated, nothing paid
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(10)
    assert _run(source, str(out)).delivered == 2  # released: the next run goes ahead


def test_a_killed_holder_leaves_no_stale_local_lock(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    holder.kill()
    holder.wait(10)
    assert _run(_input(tmp_path), str(out)).delivered == 2


def test_two_simultaneous_runs_in_one_process_do_not_both_generate(tmp_path: Path) -> None:
    out = tmp_path / "out"
    source = write_csv(tmp_path / "in.csv",
                       [{"id": f"r{i}", "prompt": f"p {i}"} for i in range(20)])
    first, second = FakeProvider("p", image_size=(32, 32)), FakeProvider("p", image_size=(32, 32))

    async def go() -> list[Any]:
        chains = [fake_chain(first), fake_chain(second)]
        async with chains[0], chains[1]:
            return await asyncio.gather(*(run_batch(c, str(source), str(out), BatchOptions(
                handle_signals=False, fsync=False)) for c in chains), return_exceptions=True)
    results = asyncio.run(go())
    refused = [r for r in results if isinstance(r, OutputLocked)]
    assert len(refused) == 1
    assert first.calls + second.calls == 20


@pytest.fixture(scope="module")
def s3_server() -> Any:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, dict[str, Any], str]:
    import secrets

    import s3fs

    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    options = {"key": "testing", "secret": "testing",
               "client_kwargs": {"endpoint_url": s3_server, "region_name": "eu-west-1"},
               "skip_instance_cache": True}
    fs = s3fs.S3FileSystem(**options)
    bucket = f"lock-{secrets.token_hex(4)}"
    fs.mkdir(bucket)
    return fs, options, bucket


def test_an_s3_output_is_locked_with_a_lease(tmp_path: Path,
                                             s3: tuple[Any, dict[str, Any], str]) -> None:
    fs, options, bucket = s3
    url = f"s3://{bucket}/run"
    now = [time.time()]  # the run below reads the real clock
    holder = OutputLock(Storage(url, options), "holder-run", lease_s=60, clock=lambda: now[0])
    holder.acquire()
    assert fs.exists(f"{bucket}/run/{LOCK_NAME}")
    with pytest.raises(OutputLocked, match=f"pid {os.getpid()} .*holder-run"):
        _run(_input(tmp_path), url, storage_options=options)
    # a second contender with the same clock: refused while the lease runs
    other = OutputLock(Storage(url, options), "other", clock=lambda: now[0] + 30)
    with pytest.raises(OutputLocked):
        other.acquire()
    # renewing pushes the lease on; a contender after the old expiry is still refused
    now[0] += 40
    assert holder.renew_due()
    holder.renew()
    late = OutputLock(Storage(url, options), "late", clock=lambda: now[0] + 50)
    with pytest.raises(OutputLocked):
        late.acquire()
    # the holder dies without releasing: once its lease has run out, the lock is taken over
    taker = OutputLock(Storage(url, options), "taker", clock=lambda: now[0] + 61)
    taker.acquire()
    holder.release()  # no longer its lock: leaves the taker's in place
    assert fs.exists(f"{bucket}/run/{LOCK_NAME}")
    taker.release()
    assert not fs.exists(f"{bucket}/run/{LOCK_NAME}")
    summary = _run(_input(tmp_path), url, storage_options=options)
    assert summary.delivered == 2
    assert not fs.exists(f"{bucket}/run/{LOCK_NAME}")  # released at the end of the run
