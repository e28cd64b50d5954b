"""Zero cost when unused: the library imports no OpenTelemetry, ``instrument`` without a
configured provider subscribes nothing, and without the extra the error names ``[otel]``."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap

from fallback_chain import Chain
from fallback_chain.providers import FakeProvider
from fallback_chain.telemetry.otel import instrument


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=60)


_RUN_A_CHAIN = """
    import os, sys, traceback
    importers = []

    class Watch:  # notes which file imports OpenTelemetry or prometheus_client first
        def find_spec(self, name, path=None, target=None):
            if name in ("opentelemetry", "prometheus_client"):
                stack = [f.filename for f in traceback.extract_stack()[:-1]]
                importers.append([f for f in stack if "importlib" not in f][-1])
            return None

    sys.meta_path.insert(0, Watch())
    import fallback_chain.telemetry  # the package itself is free
    from fallback_chain import Chain
    from fallback_chain.providers import FakeProvider
    chain = Chain([FakeProvider("a", script=[429]), FakeProvider("b")])
    result = chain.generate("a lighthouse")
    assert result.provider == "b", result
    ours = [os.path.realpath(os.path.dirname(m.__file__))
            for m in (sys.modules["fallback_chain"], sys.modules["fallback_chain.providers"])]
    print(sorted(m for m in sys.modules
                 if m.split(".")[0] in ("opentelemetry", "prometheus_client")))
    print([f for f in importers if any(os.path.realpath(f).startswith(d) for d in ours)])
    print(importers)
"""


def test_the_library_works_and_imports_no_opentelemetry_when_not_configured():
    # as installed without the redis extra: nothing of OpenTelemetry is loaded at all
    out = _python('import sys; sys.modules["redis"] = None\n' + textwrap.dedent(_RUN_A_CHAIN))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["[]", "[]", "[]"]
    # with redis installed, pybreaker imports redis, and redis-py loads the OpenTelemetry SDK
    # if it is there; still no module of ours imports it
    out = _python(_RUN_A_CHAIN)
    assert out.returncode == 0, out.stderr
    _loaded, ours, importers = out.stdout.splitlines()
    assert ours == "[]"
    assert all("/redis/" in f for f in ast.literal_eval(importers)), importers


def test_instrument_without_a_configured_provider_subscribes_nothing():
    # no provider given and none set globally (this test process never sets one)
    chain = Chain([FakeProvider("a")], log=False)
    exporter = instrument(chain)
    assert not exporter.active
    assert not chain.events  # the router keeps its no-subscriber fast path
    assert chain.generate("x").provider == "a"


def test_without_the_extra_the_error_names_otel():
    out = _python("""
        import sys
        sys.modules["opentelemetry"] = None  # as if opentelemetry-api were not installed
        sys.modules["prometheus_client"] = None
        from fallback_chain import Chain
        from fallback_chain.extras import MissingExtraError, require
        from fallback_chain.providers import FakeProvider
        from fallback_chain.telemetry.otel import instrument
        from fallback_chain.telemetry.prometheus import serve_metrics
        chain = Chain([FakeProvider("a")])
        for attempt in (lambda: instrument(chain),
                        lambda: serve_metrics(chain, 0).__enter__()):
            try:
                attempt()
            except MissingExtraError as exc:
                assert exc.extra == "otel", exc
                print(exc)
            else:
                raise SystemExit("no error")
        assert chain.generate("x").provider == "a"  # the library itself still works
        """)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2
    assert all("pip install 'fallback-chain[otel]'" in line for line in lines)


def test_the_otel_extra_is_registered():
    from fallback_chain.extras import EXTRAS, require

    assert "opentelemetry" in EXTRAS["otel"] and "prometheus_client" in EXTRAS["otel"]
    require("otel", "tests")  # installed here: no error
