"""``fallback-chain report`` (one self-contained HTML file for a batch output folder) and
``fallback-chain review`` (the same page with tick boxes, served on 127.0.0.1, writing the
selection file ``finalize --select`` reads). See docs/report.md."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from fallback_chain.batch.storage import Storage

StorageOption = Annotated[list[str] | None, typer.Option(
    "--storage-option", help="KEY=VALUE passed to fsspec for an s3:// folder (repeatable).")]


def _open(folder: str, storage_option: list[str] | None) -> Storage:
    from fallback_chain.batch.manifest import LOCAL_NAME, SEGMENT_DIR
    from fallback_chain.batch.storage import Storage

    from .batch import _storage_options

    try:
        options = _storage_options(storage_option or [])
    except ValueError as exc:
        raise _usage(str(exc)) from None
    storage = Storage(folder, options)
    if storage.local and not os.path.isdir(storage.root):
        raise _usage(f"{folder}: no such folder")
    if storage.local and not os.path.exists(storage.path(LOCAL_NAME)):
        raise _usage(f"{folder}: not a batch output folder (no {LOCAL_NAME})")
    if not storage.local and not storage.list_sync(SEGMENT_DIR):
        raise _usage(f"{folder}: not a batch output folder (no {SEGMENT_DIR}/ segments)")
    return storage


def _usage(message: str) -> typer.Exit:
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(2)


def report(
    folder: Annotated[str, typer.Argument(
        metavar="DIR", help="A batch output folder: a local path or an s3:// URL.")],
    out: Annotated[str | None, typer.Option(
        "--out", help="Where to write the HTML file (a local path); default: report.html in "
                      "DIR.")] = None,
    storage_option: StorageOption = None,
) -> None:
    """Write one self-contained HTML report of a batch: thumbnails, filters, attempts,
    refusals, spend and latency by provider. It loads nothing from the network."""
    from fallback_chain.report import write_report

    storage = _open(folder, storage_option)
    try:
        where = write_report(storage, out)
    finally:
        storage.close()
    print(f"report: {where}")


def review(
    folder: Annotated[str, typer.Argument(
        metavar="DIR", help="A batch output folder: a local path or an s3:// URL.")],
    selection: Annotated[str | None, typer.Option(
        "--selection", help="The selection file to write (one item id per line); default: "
                            "selection.txt in DIR (required when DIR is not local).")] = None,
    port: Annotated[int, typer.Option(
        help="Loopback port to serve on (0: any free port).")] = 0,
    open_browser: Annotated[bool, typer.Option(
        "--open/--no-open", help="Open the page in the default browser.")] = True,
    storage_option: StorageOption = None,
) -> None:
    """Tick drafts in a local page (127.0.0.1 only) and save the selection file that
    `finalize --select` reads. Keys: arrows move, space ticks, enter opens, s saves."""
    from fallback_chain.report.review import ReviewServer

    storage = _open(folder, storage_option)
    if selection is None:
        if not storage.local:
            raise _usage("DIR is not a local folder: pass --selection FILE")
        selection = storage.path("selection.txt")
    try:
        server = ReviewServer(storage, selection, port=port)
    except OSError as exc:
        raise _usage(f"cannot listen on 127.0.0.1:{port} ({exc.strerror or exc})") from None
    print(f"review: {server.url}  (selection file: {selection}; Ctrl-C to stop)", flush=True)
    if open_browser:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        storage.close()
