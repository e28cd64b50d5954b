"""`fallback-chain report` and the review server, without a browser: what the page holds
(and never holds), the selection file, the CLI, and the report `batch` writes at the end."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_helpers import PLANTED, XSS, make_batch
from typer.testing import CliRunner

from fallback_chain.batch.storage import Storage
from fallback_chain.cli import app
from fallback_chain.report import build_report, load_batch, read_selection, write_selection
from fallback_chain.report.review import ReviewServer
from fallback_chain.report.selection import format_selection


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_batch(tmp_path_factory.mktemp("batch") / "out")


@pytest.fixture
def html(folder: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED)
    return build_report(Storage(str(folder)))


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.refs += [v or "" for k, v in attrs if k in ("src", "href", "srcset", "poster")]


def test_the_folder_is_read_with_outcomes_tenants_and_reasons(folder: Path) -> None:
    view = load_batch(Storage(str(folder)))
    by_id = {i.id: i for i in view.items}
    assert {i.id: i.outcome for i in view.items} == {
        "a-cat": "delivered", "b-dog": "delivered", "c-dog-again": "reused",
        "d-refused": "refused", "e-boat": "delivered"}
    assert by_id["a-cat"].tenant == "ana/blog" and by_id["e-boat"].tenant is None
    assert by_id["d-refused"].prompt == "something forbidden"  # from the failures file
    assert by_id["d-refused"].reason and by_id["d-refused"].provider == "alpha"
    assert by_id["c-dog-again"].shared_from == "b-dog" and by_id["c-dog-again"].attempts == []
    assert [i.id for i in view.delivered] == ["a-cat", "b-dog", "c-dog-again", "e-boat"]


def test_markup_in_a_prompt_stays_text(html: str) -> None:
    assert XSS not in html and "<script>window" not in html
    assert "&lt;script&gt;window.PWNED=1&lt;/script&gt;" in html
    assert html.count("<script>") == 1  # the page's own script, and nothing else


def test_no_key_reaches_the_page(html: str) -> None:
    assert PLANTED not in html
    assert PLANTED[:20] not in html
    assert "echoed header Authorization: Bearer ***" in html


def test_the_page_is_self_contained(html: str) -> None:
    parser = _Refs()
    parser.feed(html)
    assert parser.refs and all(r.startswith("data:image/") for r in parser.refs), parser.refs
    assert "link" not in parser.tags and "iframe" not in parser.tags
    assert "url(" not in html and "@import" not in html
    assert "default-src 'none'" in html  # and the browser is told to fetch nothing else


def test_thumbnails_are_downscaled_lazy_data_uris(html: str) -> None:
    parser = _Refs()
    parser.feed(html)
    assert len(parser.refs) == 4  # one per delivered item
    assert html.count('loading="lazy"') == 4
    assert all(r.startswith(("data:image/webp;base64,", "data:image/jpeg;base64,"))
               for r in parser.refs)


def test_filters_and_charts_are_there(html: str) -> None:
    for name, value in (("outcome", "refused"), ("provider", "alpha"), ("provider", "beta"),
                        ("tenant", "ana/blog"), ("tenant", "ben/shop")):
        assert f'data-filter="{name}" data-value="{value}"' in html
    assert "Spend by provider (USD)" in html and "Call latency by provider (s)" in html
    assert html.count("<svg") == 2


def test_the_selection_file_is_one_id_per_line(tmp_path: Path) -> None:
    path = tmp_path / "sel.txt"
    write_selection(str(path), ["a-cat", "e-boat"])
    assert path.read_text(encoding="utf-8") == "a-cat\ne-boat\n"
    path.write_text("\n a-cat \n\ne-boat\n", encoding="utf-8")
    assert read_selection(str(path)) == ["a-cat", "e-boat"]
    with pytest.raises(ValueError, match="line break"):
        format_selection(["bad\nid"])


def _post(url: str, body: object, host: str | None = None) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url + "selection", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"},
                                     method="POST")
    if host:
        request.add_header("Host", host)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}") if exc.code != 403 else {}


def test_the_review_server_writes_the_selection_and_only_answers_loopback(
        folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED)
    selection = tmp_path / "selection.txt"
    server = ReviewServer(Storage(str(folder)), str(selection))
    server.start()
    try:
        assert server.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(server.url, timeout=10) as response:
            page = response.read().decode()
        assert 'class="pick"' in page and PLANTED not in page
        assert _post(server.url, {"ids": ["e-boat", "a-cat", "a-cat"]}) == (
            200, {"count": 2, "path": str(selection)})
        assert read_selection(str(selection)) == ["a-cat", "e-boat"]  # the page's order
        with urllib.request.urlopen(server.url, timeout=10) as response:
            assert response.read().decode().count('data-picked="1"') == 2
        status, body = _post(server.url, {"ids": ["d-refused"]})
        assert status == 400 and "not delivered" in str(body["error"])
        assert _post(server.url, {"ids": "a-cat"})[0] == 400
        assert _post(server.url, {"ids": []}, host="evil.example:80")[0] == 403
        assert read_selection(str(selection)) == ["a-cat", "e-boat"]
    finally:
        server.stop()


def test_the_cli_writes_the_report(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", str(folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"report: {out}" in result.output and out.read_text().startswith("<!doctype html>")
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "not a batch output folder" in result.output


def test_batch_writes_the_report_unless_told_not_to(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the emulated ledger goes to the working folder
    for name in ("FALLBACK_CHAIN_CONFIG", "FALLBACK_CHAIN_LEDGER", "OPENAI_API_KEY",
                 "GEMINI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "in.csv").write_text("id,prompt\nboat,a boat\n", encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["batch", "in.csv", "--out", "quiet", "--emulated",
                                 "--progress", "none", "--no-report"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "quiet" / "boat.json").exists()
    assert not (tmp_path / "quiet" / "report.html").exists() and "report:" not in result.output
    result = runner.invoke(app, ["batch", "in.csv", "--out", "loud", "--emulated",
                                 "--progress", "none"])
    assert result.exit_code == 0, result.output
    assert "report: loud/report.html" in result.output
    html = (tmp_path / "loud" / "report.html").read_text(encoding="utf-8")
    assert html.count('class="item card"') == 1 and 'data-id="boat"' in html


def test_the_review_command_serves_on_loopback_until_interrupted(folder: Path,
                                                                 tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    selection = tmp_path / "picked.txt"
    proc = subprocess.Popen(
        [sys.executable, "-m", "fallback_chain.cli", "review", str(folder), "--no-open",
         "--selection", str(selection)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("review: http://127.0.0.1:"), line + (proc.stderr.read()
                                                                     if proc.stderr else "")
        url = line.split()[1]
        assert _post(url, {"ids": ["b-dog"]}) == (200, {"count": 1, "path": str(selection)})
        assert selection.read_text(encoding="utf-8") == "b-dog\n"
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
