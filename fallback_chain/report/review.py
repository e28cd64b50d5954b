"""``fallback-chain review``: the report with tick boxes, served on 127.0.0.1 only (the
standard library's ``http.server``), writing the ticked ids to a selection file (see
:mod:`.selection`). Nothing leaves the machine: the page loads nothing from elsewhere and the
server answers only loopback requests that name it in ``Host``, which also turns away pages
of other sites that point a hostname at 127.0.0.1 (DNS rebinding)."""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..batch.storage import Storage
from .load import load_batch
from .page import register_environment_secrets, render
from .selection import read_selection, write_selection

#: The only interface the review server listens on.
HOST = "127.0.0.1"
MAX_BODY = 10 * 1024 * 1024


class ReviewServer:
    """Serve the review page of ``storage``'s folder; POST /selection writes
    ``selection_path``. ``port=0`` picks a free port (see :attr:`url`)."""

    def __init__(self, storage: Storage, selection_path: str, *, port: int = 0) -> None:
        self.storage = storage
        self.selection_path = selection_path
        register_environment_secrets()
        self.view = load_batch(storage)
        self.ids = [item.id for item in self.view.delivered]
        handler: type[_Handler] = type("Handler", (_Handler,),
                                       {"review": self, "hosts": frozenset()})
        self._httpd = ThreadingHTTPServer((HOST, port), handler)
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        handler.hosts = frozenset({f"{HOST}:{self.port}", f"localhost:{self.port}"})
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def page(self) -> bytes:
        try:
            picked = frozenset(read_selection(self.selection_path))
        except FileNotFoundError:
            picked = frozenset()
        return render(self.view, self.storage, review=True, picked=picked,
                      title=f"Review: {self.view.location}").encode("utf-8")

    def save(self, ids: list[str]) -> int:
        known = set(self.ids)
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise ValueError(f"not delivered items of this batch: {unknown[:5]}")
        ordered = [i for i in self.ids if i in set(ids)]  # the page's order, no duplicates
        write_selection(self.selection_path, ordered)
        return len(ordered)

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def start(self) -> None:
        """Serve in a background thread (tests, embedding)."""
        self._thread = threading.Thread(target=self.serve_forever, name="fc-review",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()


class _Handler(BaseHTTPRequestHandler):
    server_version = "fallback-chain-review"
    review: ReviewServer
    hosts: frozenset[str]

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the command prints its own lines

    def _allowed(self) -> bool:
        if self.headers.get("Host") not in self.hosts:
            self._send(HTTPStatus.FORBIDDEN, "text/plain", b"forbidden host\n")
            return False
        return True

    def _send(self, status: HTTPStatus, ctype: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: HTTPStatus, value: dict[str, Any]) -> None:
        self._send(status, "application/json", json.dumps(value).encode("utf-8"))

    def do_GET(self) -> None:
        if not self._allowed():
            return
        if self.path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, "text/html; charset=utf-8", self.review.page())
        elif self.path == "/selection":
            self._json(HTTPStatus.OK, {"ids": _current(self.review.selection_path)})
        else:
            self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")

    def do_POST(self) -> None:
        if not self._allowed():
            return
        if self.path != "/selection":
            self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get_content_type() != "application/json" or length > MAX_BODY:
            self._json(HTTPStatus.BAD_REQUEST, {"error": "expected a JSON body"})
            return
        try:
            count = self.review.save(_ids(self.rfile.read(length)))
        except ValueError as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        except OSError as exc:
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR,
                       {"error": f"cannot write the selection: {exc.strerror or exc}"})
        else:
            self._json(HTTPStatus.OK, {"count": count, "path": self.review.selection_path})


def _ids(body: bytes) -> list[str]:
    """The ``ids`` list of a JSON body ``{"ids": [...]}``."""
    value = json.loads(body)
    ids = value.get("ids") if isinstance(value, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ValueError('expected {"ids": [strings]}')
    return ids


def _current(path: str) -> list[str]:
    try:
        return read_selection(path)
    except FileNotFoundError:
        return []
