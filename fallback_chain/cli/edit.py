"""``fallback-chain edit IMAGE "instruction"``: one edit step through a configured chain.

Providers that cannot edit are skipped. With ``--session DIR`` the step is part of an edit
session kept in ``DIR`` (``docs/sessions.md``): a new session starts from IMAGE; an existing
one continues from its current image (IMAGE must be that image), and Gemini gets the
conversation so far. Exit codes as for ``generate``: 0 edited, 1 nothing delivered, 2 bad
input or config, 3 refused on content grounds, 4 over budget, 5 deadline passed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fallback_chain.richtable import print_table

from ._output import (
    ChainOption,
    ConfigOption,
    JsonOption,
    attempt_dict,
    attempts_table,
    console,
    error_kind,
    fail,
    open_config,
    print_json,
    usd,
)

if TYPE_CHECKING:
    from fallback_chain.chain import Chain
    from fallback_chain.session import Session, Step


def edit(
    image: Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                          help="The image to edit.")],
    instruction: Annotated[str, typer.Argument(help="What to change.")],
    mask: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False, help="Mask, the size of IMAGE: transparent where to "
        "change (providers that take no mask are skipped).")] = None,
    session_dir: Annotated[Path | None, typer.Option(
        "--session", file_okay=False, help="Keep an edit session in this folder: images of "
        "every step and session.json; continues the session if the folder has one.")] = None,
    out: Annotated[Path | None, typer.Option(
        dir_okay=False, help="Where to write the edited image without --session (default: "
        "IMAGE's name with '-edited', in the current folder).")] = None,
    chain: ChainOption = None,
    config: ConfigOption = None,
    emulated: Annotated[bool, typer.Option(
        "--emulated", help="Run against a built-in emulator instead of the real vendors (no "
        "keys needed, nothing billed): the configured chain if a config file is found, else "
        "the demo chain.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Edit IMAGE by INSTRUCTION through the configured chain (providers that can edit)."""
    with _chain(chain, config, emulated, as_json) as built:
        session = _session(built, image, session_dir, as_json)
        step = _run(session, instruction, mask, as_json)
    if session_dir is not None:
        session.save(session_dir)
        saved = session_dir / f"step-{len(session.history) - 1:03d}{step.image.extension}"
    else:
        saved = step.image.save(out or Path(f"{image.stem}-edited{step.image.extension}"))
    _report(step, session, saved, as_json)


@contextlib.contextmanager
def _chain(name: str | None, config: Path | None, emulated: bool, as_json: bool
           ) -> Iterator[Chain]:
    from fallback_chain.config import ConfigError
    from fallback_chain.emulator import Emulator, serve_in_thread

    if emulated and config is None and name is None and _no_config():
        from fallback_chain.demo import KEY, build_demo_chain

        demo = Emulator(faults={"leonardo": {"job_delay_s": 0.2}}, api_keys=KEY)
        with serve_in_thread(demo) as base_url:
            yield build_demo_chain(base_url, api_key=KEY, name="demo")
        return
    cfg = open_config(config, as_json=as_json, chains=[name], emulated=emulated)
    try:
        with contextlib.ExitStack() as stack:
            target = None
            if emulated:
                from fallback_chain.config import Emulated

                emulator = Emulator(faults={"leonardo": {"job_delay_s": 0.2}})
                base_url = stack.enter_context(serve_in_thread(emulator))
                target = Emulated.from_emulator(emulator, base_url)
            try:
                built = cfg.chain(name or cfg.default_chain, emulated=target,
                                  ledger=target is None, log=False)
            except ConfigError as exc:
                raise fail(str(exc), as_json=as_json, kind="config") from None
            yield built
    finally:
        cfg.close()


def _no_config() -> bool:
    from fallback_chain.config import ConfigNotFoundError, find_config

    try:
        find_config(None)
    except ConfigNotFoundError:
        return True
    return False


def _session(chain: Chain, image: Path, folder: Path | None, as_json: bool) -> Session:
    from fallback_chain.imaging import InvalidImageError
    from fallback_chain.session import SESSION_FILE, Session

    try:
        if folder is not None and (folder / SESSION_FILE).is_file():
            session = Session.load(folder, chain)
            current = session.image
            given = Session(chain, image=image).image
            if current is None or given is None or given.sha256 != current.sha256:
                raise fail(f"{image} is not the current image of the session in {folder}; "
                           f"pass its latest step image (or another --session folder)",
                           as_json=as_json)
            return session
        return chain.session(image=image)
    except (InvalidImageError, ValueError, OSError) as exc:
        raise fail(str(exc), as_json=as_json) from None


def _run(session: Session, instruction: str, mask: Path | None, as_json: bool) -> Step:
    from fallback_chain.errors import ChainError, RequestValidationError

    async def go() -> Step:
        async with session.chain:
            return await session.aedit(instruction, mask=mask)

    try:
        return asyncio.run(go())
    except RequestValidationError as exc:
        raise fail(exc.message, as_json=as_json, kind="invalid_request") from None
    except ChainError as exc:
        kind, code = error_kind(exc)
        if as_json:
            print_json({"ok": False, "error": kind, "message": str(exc),
                        "attempts": [attempt_dict(a) for a in exc.attempts]})
            raise typer.Exit(code) from None
        print_table(console(stderr=True), attempts_table(exc.attempts, title="attempts"))
        raise fail(str(exc), code, kind=kind) from None


def _report(step: Step, session: Session, saved: Path, as_json: bool) -> None:
    attempts = step.result.attempts if step.result is not None else []
    if as_json:
        print_json({"ok": True, "provider": step.provider, "model": step.model,
                    "cost_usd": step.cost_usd, "session_cost_usd": session.cost_usd,
                    "steps": len(session.history), "image": str(saved),
                    "sha256": step.image.sha256,
                    "attempts": [attempt_dict(a) for a in attempts]})
        return
    out = console()
    print_table(out, attempts_table(attempts, title="attempts"))
    out.print(f"edited by {step.provider}:{step.model} for {usd(step.cost_usd)} "
              f"(session: {len(session.history)} steps, {usd(session.cost_usd)})", markup=False)
    out.print(f"saved {saved}", markup=False)
