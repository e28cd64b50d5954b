"""Prometheus metrics of a chain for the length of a run (``--metrics-port N`` of
``fallback-chain generate`` and ``batch``).

The metrics of :mod:`.meters` go through an OpenTelemetry ``MeterProvider`` whose reader is
``opentelemetry-exporter-prometheus``'s, into a registry of our own that ``prometheus-client``
serves at ``http://ADDR:N/metrics``. ADDR is ``127.0.0.1`` unless the environment variable
``FALLBACK_CHAIN_METRICS_ADDR`` says otherwise (``0.0.0.0`` for a scraper on another host).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..extras import load

if TYPE_CHECKING:
    from ..chain import Chain

ADDR_ENV = "FALLBACK_CHAIN_METRICS_ADDR"
FEATURE = "--metrics-port (Prometheus metrics)"


@contextlib.contextmanager
def serve_metrics(chain: Chain | None, port: int | None, addr: str | None = None
                  ) -> Iterator[str | None]:
    """Serve ``chain``'s metrics on ``port`` (0: any free port) while the block runs; yields
    the URL (None, and nothing served, when ``port`` or ``chain`` is None).

    Spans go to the globally configured tracer provider, if the application set one."""
    if port is None or chain is None:
        yield None
        return
    prometheus_client = load("prometheus_client", "otel", FEATURE)
    exporter = load("opentelemetry.exporter.prometheus", "otel", FEATURE)
    sdk_metrics = load("opentelemetry.sdk.metrics", "otel", FEATURE)
    from .otel import instrument

    registry = prometheus_client.CollectorRegistry()
    reader = exporter.PrometheusMetricReader(registry=registry)
    provider = sdk_metrics.MeterProvider(metric_readers=[reader])
    host = addr or os.environ.get(ADDR_ENV) or "127.0.0.1"
    server, thread = prometheus_client.start_http_server(port, addr=host, registry=registry)
    subscriber = instrument(chain, meter_provider=provider)
    try:
        shown = f"[{host}]" if ":" in host else host
        yield f"http://{shown}:{server.server_port}/metrics"
    finally:
        subscriber.close()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        provider.shutdown()
