"""Telemetry exporters built on the chain's events (the router knows none of them).

:mod:`fallback_chain.telemetry.otel` turns every request and attempt into OpenTelemetry spans
and metrics (``pip install 'fallback-chain[otel]'``); importing this package imports nothing
of OpenTelemetry.
"""
