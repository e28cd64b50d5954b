"""``fallback-chain cassette``: work with recorded vendor exchanges (``--record DIR``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

cassette_app = typer.Typer(no_args_is_help=True, add_completion=False,
                           help="Work with recorded vendor exchanges (generate/batch --record).")


@cassette_app.command("to-corpus")
def to_corpus_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                         help="One cassette file.")],
    out: Annotated[Path, typer.Option(help="The corpus file to write "
                                           "(e.g. tests/corpus/openai/my-case.json).")],
    outcome: Annotated[str, typer.Option(help="The outcome the answer should get "
                                              "(rate_limited, server_error, ...).")],
    action: Annotated[str, typer.Option(help="stop, advance, retry or success.")],
    cooldown: Annotated[str, typer.Option(help="none, retry_after, default or long.")]
    = "none",
    cooldown_s: Annotated[float | None, typer.Option(
        help="The cooldown in seconds, with --cooldown retry_after.")] = None,
    title: Annotated[str | None, typer.Option(help="A one-line title.")] = None,
    reason_contains: Annotated[str | None, typer.Option(
        help="Words of the vendor the chain's reason must keep.")] = None,
) -> None:
    """Turn one recorded exchange into a real-payload corpus file (provenance: recorded on
    DATE by the user)."""
    from fallback_chain.cassette.corpus import to_corpus
    from fallback_chain.cassette.format import CassetteError, read_cassette

    try:
        doc = to_corpus(read_cassette(file), action=action, outcome=outcome,
                        cooldown=cooldown, cooldown_s=cooldown_s, title=title,
                        reason_contains=reason_contains)
    except (CassetteError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    typer.echo(f"wrote {out} ({doc['vendor']} {doc['endpoint']}, "
               f"{doc['response'].get('status')})")
