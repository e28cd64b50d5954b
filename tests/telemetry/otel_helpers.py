"""In-memory OpenTelemetry SDK providers (nothing global is set) and a chain runner."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from fallback_chain import Chain
from fallback_chain.errors import ChainError
from fallback_chain.results import ChainResult
from fallback_chain.telemetry.otel import OtelExporter, instrument
from fallback_chain.vtime import run_virtual


class Otel:
    """A tracer provider writing to memory and a meter provider read on demand."""

    def __init__(self) -> None:
        self.spans_out = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans_out))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def instrument(self, chain: Chain, **kwargs: Any) -> OtelExporter:
        return instrument(chain, tracer_provider=self.tracer_provider,
                          meter_provider=self.meter_provider, **kwargs)

    def spans(self) -> Sequence[ReadableSpan]:
        return self.spans_out.get_finished_spans()

    def points(self, name: str) -> list[tuple[dict[str, Any], float]]:
        """(attributes, value) of every point of metric ``name`` (sum for histograms)."""
        data = self.reader.get_metrics_data()
        out = []
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == name:
                        for p in m.data.data_points:
                            value = p.sum if hasattr(p, "sum") else p.value
                            out.append((dict(p.attributes or {}), value))
        return out

    def close(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def run(chain: Chain, prompt: str = "a lighthouse at dusk", **fields: Any
        ) -> ChainResult | ChainError:
    async def go() -> ChainResult | ChainError:
        try:
            return await chain.agenerate(prompt, **fields)
        except ChainError as exc:
            return exc

    return run_virtual(go())
