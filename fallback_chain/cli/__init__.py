"""The ``fallback-chain`` command line. Each command lives in its own module and registers
itself here; heavy imports happen inside the command functions so ``--help`` stays fast."""

from __future__ import annotations

from ..extras import require

require("cli", "the fallback-chain command line")

import typer  # noqa: E402

from .batch import batch  # noqa: E402
from .cassette import cassette_app  # noqa: E402
from .check import check  # noqa: E402
from .compare import compare as compare_command  # noqa: E402
from .cost import cost_app  # noqa: E402
from .demo import demo  # noqa: E402
from .edit import edit  # noqa: E402
from .emulate import emulate as emulate_command  # noqa: E402
from .finalize import finalize  # noqa: E402
from .generate import generate  # noqa: E402
from .providers_cmd import providers_command  # noqa: E402
from .report import report as report_command  # noqa: E402
from .report import review as review_command  # noqa: E402
from .simulate import simulate  # noqa: E402
from .worker import worker  # noqa: E402

app = typer.Typer(name="fallback-chain", no_args_is_help=True, add_completion=False,
                  help="Image generation across several providers with a fallback chain.")


@app.callback()
def _root() -> None:
    """Image generation across several providers with a fallback chain."""


app.command("demo", short_help="Run the demo on built-in emulated providers: no API keys.")(
    demo)
app.command("generate", short_help="Generate images for a prompt through a chain.")(generate)
app.command("batch", short_help="Generate images for every row of a CSV or JSONL file, "
            "resumably.")(batch)
app.command("compare", short_help="Run a prompt on several providers; draw a contact sheet.")(
    compare_command)
app.command("providers", short_help="List providers and models: capabilities, prices, status.")(
    providers_command)
app.command("check", short_help="Preflight every provider's credentials; spends nothing.")(
    check)
app.command("simulate", short_help="Compare chain configurations on simulated or replayed "
            "traffic.")(simulate)
app.command("emulate", short_help="Serve the emulated vendor APIs on a loopback port.")(
    emulate_command)
app.add_typer(cost_app, name="cost")
app.command("finalize", short_help="Make finals of chosen drafts (batch --draft), "
            "resumably.")(finalize)
app.add_typer(cassette_app, name="cassette",
              short_help="Work with recorded vendor exchanges: turn one into a corpus file.")
app.command("report", short_help="Write one self-contained HTML report of a batch folder.")(
    report_command)
app.command("review", short_help="Tick a batch's images on a loopback page; write the "
            "selection file.")(review_command)
app.command("edit", short_help="Edit an image by instruction; --session keeps an edit session.")(
    edit)
app.command("worker", short_help="Serve queued batches (batch --queue) as a Celery worker.")(
    worker)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
