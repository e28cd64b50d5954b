"""``--metrics-port N`` of ``generate`` and ``batch``: Prometheus metrics for the length of the run
(:mod:`fallback_chain.telemetry.prometheus`; needs ``pip install 'fallback-chain[otel]'``).

OpenTelemetry is imported only when the option is given.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from fallback_chain.chain import Chain

MetricsPortOption = Annotated[int | None, typer.Option(
    "--metrics-port", min=0, max=65535, metavar="N",
    help="Serve Prometheus metrics at http://127.0.0.1:N/metrics while the run lasts "
    "(FALLBACK_CHAIN_METRICS_ADDR changes the address; needs the [otel] extra).")]


@contextlib.contextmanager
def serve_metrics(chain: Chain | None, port: int | None) -> Iterator[None]:
    """Serve ``chain``'s metrics on ``port`` while the block runs (nothing when None)."""
    if port is None or chain is None:
        yield
        return
    from fallback_chain.extras import MissingExtraError
    from fallback_chain.telemetry.prometheus import serve_metrics as serve

    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(serve(chain, port))
        except (MissingExtraError, OSError) as exc:
            raise typer.BadParameter(str(exc), param_hint="--metrics-port") from None
        typer.echo(f"metrics at {url}", err=True)
        yield
