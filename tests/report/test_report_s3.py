"""`fallback-chain report` on an `s3://` folder (moto's S3 server on a loopback port): the
manifest segments and sidecars are read through fsspec, and the report lands in the bucket or
in a local file."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from report_helpers import ROWS
from typer.testing import CliRunner

from fallback_chain import Chain
from fallback_chain.batch.engine import BatchOptions, run_batch
from fallback_chain.cli import app
from fallback_chain.providers import FakeProvider


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def test_report_of_an_s3_folder(s3_server: str, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    import s3fs

    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    options: dict[str, Any] = {
        "key": "testing", "secret": "testing", "skip_instance_cache": True,
        "client_kwargs": {"endpoint_url": s3_server, "region_name": "eu-west-1"}}
    fs = s3fs.S3FileSystem(**options)
    bucket = f"report-{secrets.token_hex(4)}"
    fs.mkdir(bucket)
    source = tmp_path / "input.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    chain = Chain([FakeProvider("alpha", blocked_terms=["forbidden"], image_size=(64, 64))],
                  log=False)
    url = f"s3://{bucket}/run"

    async def go() -> None:
        async with chain:
            await run_batch(chain, str(source), url,
                            BatchOptions(handle_signals=False, storage_options=options))

    asyncio.run(go())
    flags = [f"--storage-option={k}={json.dumps(v)}" for k, v in options.items()]
    local = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", url, "--out", str(local), *flags])
    assert result.exit_code == 0, result.output
    html = local.read_text(encoding="utf-8")
    assert html.count('class="item card"') == 4 and 'data-id="d-refused"' in html
    assert html.count('src="data:image/') == 4
    result = CliRunner().invoke(app, ["report", url, *flags])
    assert result.exit_code == 0, result.output
    assert f"report: {url}/report.html" in result.output
    assert fs.cat_file(f"{bucket}/run/report.html").decode("utf-8") == html
