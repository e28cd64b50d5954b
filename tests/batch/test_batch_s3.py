"""Output to S3 through s3fs, against a local S3 server (moto's server mode on a loopback
port): the same objects and sidecars as a local run, resume, and recovery from sidecars."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from batch_helpers import fake_chain, free_port, run, write_csv

from fallback_chain.providers import FakeProvider

VOLATILE = {"latency_s", "started_at", "finished_at"}


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
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
    """An s3fs filesystem on the local server, its options, and a fresh bucket."""
    import s3fs

    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    options = {"key": "testing", "secret": "testing",
               "client_kwargs": {"endpoint_url": s3_server, "region_name": "eu-west-1"},
               "skip_instance_cache": True}
    fs = s3fs.S3FileSystem(**options)
    bucket = f"batch-{secrets.token_hex(4)}"
    fs.mkdir(bucket)
    return fs, options, bucket


def _normalised(car: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in car.items() if k not in VOLATILE}
    out["attempts"] = [{k: v for k, v in a.items() if k not in ("started_at", "latency_s")}
                       for a in car["attempts"]]
    if out.get("shared"):
        out["shared"] = {k: v for k, v in out["shared"].items()
                         if k not in ("original_attempts", "original_finished_at")}
    return out


def _rows() -> list[dict[str, Any]]:
    rows = [{"id": f"s{i:02d}", "prompt": f"bucket brief {i % 7}", "size": "64x64",
             "n": str(1 + i % 2)} for i in range(20)]
    rows.append({"id": "../../etc/x", "prompt": "escape", "size": "64x64", "n": "1"})
    rows.append({"id": "/abs", "prompt": "absolute", "size": "64x64", "n": "1"})
    rows.append({"id": "bad", "prompt": "", "size": "64x64", "n": "1"})  # -> failures.csv
    return rows


def test_s3_output_matches_a_local_run(tmp_path: Path, s3: tuple[Any, dict[str, Any], str]
                                       ) -> None:
    fs, options, bucket = s3
    source = write_csv(tmp_path / "in.csv", _rows())
    local = tmp_path / "local"
    run(fake_chain(FakeProvider("p")), source, local, concurrency=4)
    url = f"s3://{bucket}/runs/one"
    summary = run(fake_chain(FakeProvider("p")), source, url, concurrency=4,
                  storage_options=options)
    assert summary.delivered == 22 and summary.output == url and summary.invalid_rows == 1
    assert summary.failures_file == f"{url}/failures.csv"

    remote = {p.rsplit("/", 1)[-1] for p in fs.find(f"{bucket}/runs/one")}
    segments = {p for p in remote if p.endswith(".jsonl")}
    assert len(segments) >= 1  # the manifest, as segments under manifest/
    assert fs.ls(f"{bucket}/runs/one/manifest")
    local_files = {p.name for p in local.iterdir()} - {"manifest.jsonl"}
    assert remote - segments == local_files
    assert all(fs.info(f"{bucket}/runs/one/{name}")["type"] == "file" for name in local_files)
    assert not fs.exists(f"{bucket}/etc") and not fs.exists("abs")
    for name in local_files:
        data = fs.cat_file(f"{bucket}/runs/one/{name}")
        if name.endswith(".json"):
            assert _normalised(json.loads(data)) == _normalised(
                json.loads((local / name).read_text()))
        else:
            assert data == (local / name).read_bytes(), name


def test_s3_resume_and_recovery_from_sidecars(tmp_path: Path,
                                              s3: tuple[Any, dict[str, Any], str]) -> None:
    fs, options, bucket = s3
    source = write_csv(tmp_path / "in.csv", _rows())
    url = f"s3://{bucket}/resume"
    run(fake_chain(FakeProvider("p")), source, url, storage_options=options)
    again = FakeProvider("p")
    summary = run(fake_chain(again), source, url, storage_options=options)
    assert again.calls == 0 and summary.skipped == 22
    # lose every manifest segment (as if killed before they were written): sidecars remain
    fs.rm(f"{bucket}/resume/manifest", recursive=True)
    third = FakeProvider("p")
    summary = run(fake_chain(third), source, url, storage_options=options)
    assert third.calls == 0 and summary.recovered == 22 and summary.delivered == 22


def test_missing_bucket_is_a_clear_error(tmp_path: Path,
                                         s3: tuple[Any, dict[str, Any], str]) -> None:
    from fallback_chain.batch.storage import StorageError

    _, options, _ = s3
    source = write_csv(tmp_path / "in.csv", _rows()[:1])
    with pytest.raises(StorageError, match="bucket 'no-such-bucket' does not exist"):
        run(fake_chain(), source, "s3://no-such-bucket/x", storage_options=options)


def test_input_read_from_s3(tmp_path: Path, s3: tuple[Any, dict[str, Any], str]) -> None:
    fs, options, bucket = s3
    source = write_csv(tmp_path / "in.csv", _rows())
    fs.put_file(str(source), f"{bucket}/inputs/in.csv")
    summary = run(fake_chain(FakeProvider("p")), f"s3://{bucket}/inputs/in.csv",
                  tmp_path / "out", input_options=options)
    assert (summary.rows, summary.delivered, summary.invalid_rows) == (23, 22, 1)
    assert "inputs/in.csv, line 24: prompt: is required" in (
        tmp_path / "out" / "failures.csv").read_text()


def test_the_command_writes_to_s3_with_storage_options(
        tmp_path: Path, s3: tuple[Any, dict[str, Any], str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import typer
    from typer.testing import CliRunner

    from fallback_chain.cli.batch import batch

    fs, options, bucket = s3
    monkeypatch.delenv("FALLBACK_CHAIN_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    app = typer.Typer()
    app.command()(batch)
    source = write_csv(tmp_path / "in.csv", [{"id": "one", "prompt": "a lighthouse"}])
    fs.put_file(str(source), f"{bucket}/in/in.csv")
    args = [f"s3://{bucket}/in/in.csv", "--out", f"s3://{bucket}/cli", "--emulated", "--json",
            "--progress", "none"]
    for key, value in options.items():
        args += ["--storage-option", f"{key}={json.dumps(value)}"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["delivered"] == 1
    assert json.loads(fs.cat_file(f"{bucket}/cli/one.json"))["id"] == "one"
