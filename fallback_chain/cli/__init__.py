"""The ``fallback-chain`` command line. Each command lives in its own module and registers
itself here; heavy imports happen inside the command functions so ``--help`` stays fast."""

from __future__ import annotations

import typer

from .cost import cost_app
from .emulate import emulate

app = typer.Typer(name="fallback-chain", no_args_is_help=True, add_completion=False,
                  help="Image generation across several providers with a fallback chain.")


@app.callback()
def _root() -> None:
    """Image generation across several providers with a fallback chain."""


app.command("emulate")(emulate)
app.add_typer(cost_app, name="cost")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
