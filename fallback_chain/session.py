"""Edit sessions: iterate on one image by instruction, across providers.

    session = chain.session()
    await session.agenerate("a lighthouse at dusk")
    await session.aedit("make the sky purple")
    await session.aedit("remove the boat", mask="boat-mask.png")
    session.image.save("final.png"); session.undo(); session.save("work/lighthouse")

Each step is one ordinary chain request (same policy, fallback, costs and attempts). An edit's
input is the current image (plus the mask, if any), so providers that cannot edit are skipped
by the chain's capability check. When the previous step ran on Gemini, the request also carries
the conversation so far (``ImageRequest.history``), which Gemini takes natively; every other
provider edits the current image from the instruction alone. A fallback in the middle of a
session therefore continues from the current image on the next capable provider; each step
records which provider and model made it. See ``docs/sessions.md``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .errors import ChainError
from .request import ImageRequest, Turn
from .results import ChainResult, GeneratedImage

if TYPE_CHECKING:
    from .chain import Chain

StepKind = Literal["input", "generate", "edit"]
#: The file a saved session's steps are described in (next to one image file per step).
SESSION_FILE = "session.json"
_FORMAT = 1


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a session: the image it left, and how it was made.

    ``kind`` is ``input`` (the image a session started from; no provider, no cost),
    ``generate`` or ``edit``. ``instruction`` is the prompt or the edit instruction.
    ``result`` is the chain's whole answer (attempts included); ``None`` for an input step.
    """

    kind: StepKind
    instruction: str
    image: GeneratedImage
    provider: str = ""
    model: str = ""
    vendor: str = ""
    cost_usd: float = 0.0
    masked: bool = False
    result: ChainResult | None = None


class Session:
    """A sequence of steps on one chain; see the module docstring. Built by
    :meth:`fallback_chain.Chain.session`.

    ``history`` lists the steps that led to the current image (``undo`` removes the last).
    ``cost_usd`` is everything the session's requests cost, including steps undone and
    requests that failed: that money was spent.
    """

    def __init__(self, chain: Chain, *, image: GeneratedImage | bytes | str | Path | None = None
                 ) -> None:
        self.chain = chain
        self._steps: list[Step] = []
        self._spent = 0.0
        if image is not None:
            self._steps.append(Step("input", "", _as_image(image)))

    # ------------------------------------------------------------------------ views

    @property
    def history(self) -> list[Step]:
        return list(self._steps)

    @property
    def image(self) -> GeneratedImage | None:
        """The current image (``None`` before the first step)."""
        return self._steps[-1].image if self._steps else None

    @property
    def cost_usd(self) -> float:
        return self._spent

    # ------------------------------------------------------------------------ steps

    async def agenerate(self, prompt: str, /, **fields: Any) -> Step:
        """Generate a new image from ``prompt`` (a fresh start: no input image); it becomes the
        current image. ``fields`` are other ``ImageRequest`` fields (size, quality, seed...)."""
        request = ImageRequest(prompt=prompt, **fields)
        return await self._run("generate", request)

    async def aedit(self, instruction: str, /, *, mask: bytes | str | Path | None = None,
                    **fields: Any) -> Step:
        """Edit the current image by ``instruction`` (``mask``: transparent where to change,
        the size of the image). Raises ``ValueError`` when there is no image yet."""
        current = self.image
        if current is None:
            raise ValueError("the session has no image yet: generate one first, or start the "
                             "session from an image (chain.session(image=...))")
        history = self._conversation() if mask is None else ()
        request = ImageRequest(prompt=instruction, images=(current.data,), mask=mask,
                               history=history, **fields)
        return await self._run("edit", request)

    def generate(self, prompt: str, /, **fields: Any) -> Step:
        """Blocking form of :meth:`agenerate` (runs on the chain's private loop)."""
        _not_in_a_loop("Session.generate", "agenerate")
        return self.chain._loop_thread().run(self.agenerate(prompt, **fields))

    def edit(self, instruction: str, /, *, mask: bytes | str | Path | None = None,
             **fields: Any) -> Step:
        """Blocking form of :meth:`aedit`."""
        _not_in_a_loop("Session.edit", "aedit")
        return self.chain._loop_thread().run(self.aedit(instruction, mask=mask, **fields))

    def undo(self) -> Step:
        """Remove the last step and return it; the image before it is current again. Its cost
        stays in ``cost_usd``. Raises ``ValueError`` when there is nothing to undo."""
        if not self._steps or self._steps[-1].kind == "input":
            raise ValueError("nothing to undo")
        return self._steps.pop()

    async def _run(self, kind: StepKind, request: ImageRequest) -> Step:
        try:
            result = await self.chain.agenerate(request)
        except ChainError as exc:
            self._spent += sum(a.cost_usd for a in exc.attempts)
            raise
        self._spent += result.cost_usd
        step = Step(kind, request.prompt, result.image, result.provider, result.model,
                    self._vendor(result.provider), result.cost_usd, request.mask is not None,
                    result)
        self._steps.append(step)
        return step

    def _vendor(self, key: str) -> str:
        for provider in self.chain.providers:
            if key in (provider.key, provider.name):
                return str(getattr(provider, "vendor", "") or "")
        return ""

    def _conversation(self) -> tuple[Turn, ...]:
        """The Gemini conversation that led to the current image: the trailing run of steps
        made on Gemini (none if the last step was not), as user and model turns."""
        run: list[Step] = []
        for step in reversed(self._steps):
            if step.vendor != "gemini" or step.masked:
                break
            run.append(step)
        run.reverse()
        if not run:
            return ()
        turns: list[Turn] = []
        before = len(self._steps) - len(run) - 1
        for i, step in enumerate(run):
            shown: tuple[bytes, ...] = ()
            if i == 0 and step.kind == "edit" and before >= 0:
                shown = (self._steps[before].image.data,)  # the image it was asked to edit
            turns.append(Turn(role="user", text=step.instruction, images=shown))
            turns.append(Turn(role="model", images=(step.image.data,)))
        return tuple(turns)

    # ------------------------------------------------------------------------ files

    def save(self, folder: str | Path) -> Path:
        """Write the session to ``folder``: one image per step (``step-000.png``...) and
        ``session.json`` (each step's instruction, provider, model, cost, attempts; no keys or
        image bytes). Returns the JSON file's path. Step files already there are overwritten, and
        those of steps undone since are removed."""
        target = Path(folder)
        target.mkdir(parents=True, exist_ok=True)
        steps = []
        for i, step in enumerate(self._steps):
            saved = step.image.save(target / f"step-{i:03d}")
            result = None if step.result is None else step.result.model_dump(
                mode="json", exclude={"images"})
            steps.append({"kind": step.kind, "instruction": step.instruction,
                          "image": saved.name, "sha256": step.image.sha256,
                          "provider": step.provider, "model": step.model,
                          "vendor": step.vendor, "cost_usd": step.cost_usd,
                          "masked": step.masked, "result": result})
        for stale in target.glob("step-[0-9][0-9][0-9].*"):  # steps undone since last save
            if stale.name not in {s["image"] for s in steps}:
                stale.unlink()
        doc = {"format": _FORMAT, "chain": self.chain.name, "cost_usd": self._spent,
               "steps": steps}
        path = target / SESSION_FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, folder: str | Path, chain: Chain) -> Session:
        """A session saved by :meth:`save`, continued on ``chain``. Each image is checked
        against the SHA-256 recorded for it (``ValueError`` if a file was changed)."""
        source = Path(folder)
        doc = json.loads((source / SESSION_FILE).read_text(encoding="utf-8"))
        if doc.get("format") != _FORMAT:
            raise ValueError(f"{source / SESSION_FILE}: unknown session format "
                             f"{doc.get('format')!r}")
        session = cls(chain)
        for raw in doc["steps"]:
            image = GeneratedImage.from_bytes((source / raw["image"]).read_bytes())
            if image.sha256 != raw["sha256"]:
                raise ValueError(f"{source / raw['image']}: the image is not the one this "
                                 "session saved (its SHA-256 differs)")
            result = None
            if raw["result"] is not None:
                result = ChainResult.model_validate({**raw["result"], "images": [image]})
            session._steps.append(Step(raw["kind"], raw["instruction"], image, raw["provider"],
                                       raw["model"], raw["vendor"], float(raw["cost_usd"]),
                                       bool(raw["masked"]), result))
        session._spent = float(doc["cost_usd"])
        return session

    def __repr__(self) -> str:
        return (f"Session({len(self._steps)} step(s), cost_usd={self._spent:.4f}, "
                f"chain={self.chain.name!r})")


def _not_in_a_loop(what: str, instead: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(f"{what}() blocks and cannot run inside a running event loop (it would "
                       f"deadlock); use `await session.{instead}(...)` instead")


def _as_image(image: GeneratedImage | bytes | str | Path) -> GeneratedImage:
    if isinstance(image, GeneratedImage):
        return image
    data = image if isinstance(image, bytes) else Path(image).read_bytes()
    return GeneratedImage.from_bytes(data)
