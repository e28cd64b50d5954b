"""docs/observability.md: its example runs, and its metric table names every instrument."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from fallback_chain.telemetry.meters import Instruments

DOC = (Path(__file__).resolve().parents[2] / "docs" / "observability.md").read_text()


def test_the_python_example_runs_and_prints_spans():
    (block,) = re.findall(r"```python\n(.*?)```", DOC, flags=re.S)
    # a fresh interpreter: the example sets the global providers
    out = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert '"name": "fallback_chain.generate default"' in out.stdout
    assert out.stdout.count('"name": "generate_content fake-image-1"') == 2


def test_the_metric_table_names_every_instrument():
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    instruments = Instruments(provider.get_meter("t"))
    created = {i.name for i in vars(instruments).values() if hasattr(i, "name")}
    created.add("fallback_chain.breaker.state")  # the observable gauge
    documented = set(re.findall(r"^\| `(fallback_chain\.[a-z_.]+)` \|", DOC, flags=re.M))
    assert documented == created
    provider.shutdown()
