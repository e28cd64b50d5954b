"""Run the emulator as a real HTTP server (uvicorn), in the foreground or in a thread.

    with serve_in_thread(Emulator()) as base_url:      # e.g. "http://127.0.0.1:54321"
        openai.OpenAI(base_url=base_url + "/v1", api_key="test-key", max_retries=0)
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp


def _config(app: ASGIApp, host: str, port: int, log_level: str,
            graceful_s: int) -> uvicorn.Config:
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                          lifespan="off", proxy_headers=False, server_header=False,
                          date_header=True, timeout_graceful_shutdown=graceful_s,
                          timeout_keep_alive=30)


def serve(app: ASGIApp, *, host: str = "127.0.0.1", port: int = 8700,
          log_level: str = "info") -> None:
    """Serve ``app`` until interrupted (Ctrl-C); used by ``fallback-chain emulate``."""
    uvicorn.Server(_config(app, host, port, log_level, graceful_s=2)).run()


@contextmanager
def serve_in_thread(app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0,
                    log_level: str = "warning", startup_timeout_s: float = 10.0
                    ) -> Iterator[str]:
    """Serve ``app`` on ``host`` (a free port by default) in a daemon thread.

    Yields the base URL (``http://127.0.0.1:PORT``); stops the server on exit, cancelling
    requests still hanging after one second.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(_config(app, host, bound_port, log_level, graceful_s=1))
    errors: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # reported to the caller below
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True, name=f"emulator-{bound_port}")
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if errors or not thread.is_alive():
            sock.close()
            raise RuntimeError(f"emulator server failed to start: {errors!r}")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("emulator server did not start in time")
        time.sleep(0.005)
    display_host = f"[{host}]" if ":" in host else host
    try:
        yield f"http://{display_host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
