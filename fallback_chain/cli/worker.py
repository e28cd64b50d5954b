"""``fallback-chain worker --queue redis://HOST:PORT/N``: a Celery worker serving queued batches.

It consumes the items that ``batch INPUT --out DIR_OR_S3 --queue redis://...`` sends, and
generates each through the configured chain (``--config``; the chain the job names, else the
file's default), with breakers, rate limits and budgets shared in Redis: the chain's
``[state]`` if the config sets one, else the queue's Redis. ``--emulated`` runs the chain on
emulated providers. One process keeps ``--concurrency`` generations in flight: Celery's
threads pool, every thread handing its call to one event loop. See docs/distributed.md.

SIGTERM or Ctrl-C: a warm shutdown (Celery's): no new items, those in flight finish.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from fallback_chain.chain import Chain
    from fallback_chain.distributed.runtime import ChainFactory

DEFAULT_CONCURRENCY = 64


def worker(
    queue: Annotated[str, typer.Option(
        "--queue", help="The Redis broker: redis://HOST:PORT/N (the same URL as "
                        "`batch --queue`).")],
    concurrency: Annotated[int, typer.Option(
        "--concurrency", "-j", min=1, max=1024,
        help="Items in flight in this process (threads; I/O-bound).")] = DEFAULT_CONCURRENCY,
    config: Annotated[str | None, typer.Option(
        "--config", "-c",
        help="Config file (default: $FALLBACK_CHAIN_CONFIG, else ./fallback-chain.toml).")]
    = None,
    emulated: Annotated[bool, typer.Option(
        "--emulated", help="Run on built-in emulated providers (no API key; nothing billed).")]
    = False,
    emulator: Annotated[str | None, typer.Option(
        hidden=True, help="Use the emulator already serving at this URL.")] = None,
    emulator_key: Annotated[str, typer.Option(hidden=True)] = "test-key",
    visibility_timeout: Annotated[float, typer.Option(
        hidden=True, min=1, help="Seconds before an unacknowledged message is delivered "
                                 "again.")] = 300.0,
    restore_interval: Annotated[float, typer.Option(hidden=True, min=1)] = 10.0,
    lease: Annotated[float, typer.Option(
        hidden=True, min=0.1, help="Seconds an item's claim lives unless renewed.")] = 30.0,
    loglevel: Annotated[str, typer.Option("--loglevel", help="Celery's log level.")]
    = "WARNING",
    hostname: Annotated[str | None, typer.Option(
        help="This worker's node name (default: fc-PID@HOST).")] = None,
) -> None:
    """Serve queued batches (`batch --queue`) as a Celery worker until stopped."""
    from fallback_chain.distributed.app import QUEUE, make_app
    from fallback_chain.distributed.runtime import WorkerRuntime
    from fallback_chain.distributed.serve import ItemRunner
    from fallback_chain.distributed.task import register

    logging.basicConfig(level=loglevel.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = make_app(queue, visibility_timeout_s=visibility_timeout,
                       restore_interval_s=restore_interval)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    with _chains(queue, config, emulated, emulator, emulator_key) as factory:
        runtime = WorkerRuntime(queue, factory, lease_s=lease)
        try:
            runtime.warm_up()  # a config error shows now, not at the first item
            register(app, ItemRunner(runtime))
            node = hostname or f"fc-{os.getpid()}@{socket.gethostname()}"
            app.Worker(pool_cls="threads", concurrency=concurrency, queues=[QUEUE],
                       loglevel=loglevel.upper(), hostname=node, quiet=True,
                       without_mingle=True, without_gossip=True,
                       optimization="fair").start()
        finally:
            runtime.close()


@contextlib.contextmanager
def _chains(queue: str, config: str | None, emulated: bool, emulator: str | None,
            key: str) -> Iterator[ChainFactory]:
    """Chains by name, built on first use: from the config file, or (``--emulated`` without
    one) the demo chain; the shared state is the config's, else the queue's Redis."""
    from fallback_chain.config import ConfigNotFoundError, Emulated, find_config
    from fallback_chain.state.redis.link import ENV_URL

    from ._output import open_config
    from .batch import _emulator

    path = None
    if config is not None or not (emulated or emulator):
        from pathlib import Path

        path = Path(config) if config else None
    else:
        with contextlib.suppress(ConfigNotFoundError):
            path = find_config(None)
    cfg = None
    if path is not None or not (emulated or emulator):
        cfg = open_config(path, as_json=False, chains=None,
                          emulated=emulated or emulator is not None)
        if cfg.file.state is None and not os.environ.get(ENV_URL):
            os.environ[ENV_URL] = queue  # the workers share state in the queue's Redis
    try:
        with _emulator(emulated, emulator, key, start=True) as (url, api_key):
            def build(name: str | None) -> Chain:
                if cfg is None:
                    from fallback_chain.demo import build_demo_chain

                    assert url is not None
                    return build_demo_chain(url, api_key=api_key, name=name or "demo",
                                            state=queue)
                target = Emulated(url, api_key) if url is not None else None
                return cfg.chain(name, emulated=target, ledger=url is None, log=False)

            yield build
    finally:
        if cfg is not None:
            cfg.close()
