"""Prompt pre-screen: check the prompt before any image provider is asked (or paid).

``Chain(providers, prescreen=...)`` takes one screen or a list (run in order). A flagged prompt
raises :class:`~fallback_chain.errors.ContentPolicyError` with ``provider="moderation"`` and the
categories, before any admission check or image call, so nothing is spent. Every screen's call
is recorded in the attempts list as an attempt of provider ``moderation`` (model: the screen's
``model``), costing $0.

A screen that fails itself (timeout, 5xx, no connection) follows its ``on_error``: ``"allow"``
(the default) lets the request through and emits a :class:`PrescreenFailed` event (logged as a
warning); ``"block"`` stops the request with ``ChainStoppedError``.

Built-ins:

* :class:`OpenAIModeration`: OpenAI's moderation endpoint (``POST /v1/moderations``, free of
  charge; https://platform.openai.com/docs/api-reference/moderations) through the ``openai`` SDK
  (``client.moderations.create``), imported on first use.
* :class:`Blocklist`: a local list of terms matched as whole words, case-insensitively.

A screen of your own is any object with ``model`` and ``on_error`` attributes and an
``async def screen(request) -> Screening`` method.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from .errors import ConfigurationError
from .events import PrescreenFailed
from .outcome import Outcome, outcome_for_status
from .perloop import PerLoop
from .secrets import redact, register_secret

if TYPE_CHECKING:
    import openai

    from .request import ImageRequest

__all__ = ["PROVIDER", "Blocklist", "OpenAIModeration", "PrescreenFailed", "Screen",
           "ScreenError", "Screening", "screens"]

log = logging.getLogger("fallback_chain")

#: The provider name every pre-screen attempt and refusal carries.
PROVIDER = "moderation"

OnError = Literal["allow", "block"]


@dataclass(frozen=True, slots=True)
class Screening:
    """What a screen found: ``flagged`` and, if so, the ``categories`` it matched."""

    flagged: bool
    categories: tuple[str, ...] = ()


class ScreenError(Exception):
    """A screen failed (not a verdict): ``outcome`` says how, for the attempts list."""

    def __init__(self, outcome: Outcome, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.message = message
        self.status_code = status_code


@runtime_checkable
class Screen(Protocol):
    model: str
    on_error: OnError

    async def screen(self, request: ImageRequest) -> Screening: ...


def _check_on_error(on_error: str) -> None:
    if on_error not in ("allow", "block"):
        raise ConfigurationError(f"on_error must be 'allow' or 'block' (got {on_error!r})")


@dataclass
class Blocklist:
    """Flags prompts (and negative prompts) containing any of ``terms`` as a whole word or
    phrase, case-insensitively; the categories are ``blocklist:<term>``."""

    terms: Sequence[str]
    on_error: OnError = "allow"
    model: str = "blocklist"
    _pattern: re.Pattern[str] | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        _check_on_error(self.on_error)
        terms = [t.strip() for t in self.terms if t and t.strip()]
        self.terms = terms
        if terms:
            alternatives = "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True))
            self._pattern = re.compile(rf"(?<!\w)({alternatives})(?!\w)", re.IGNORECASE)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, terms: Sequence[str] = (),
                  on_error: OnError = "allow") -> Blocklist:
        """The terms of a UTF-8 text file, one per line (blank lines and lines starting with
        ``#`` are skipped), after ``terms``. ``OSError`` when the file cannot be read."""
        with open(path, encoding="utf-8") as fh:
            lines = [line.strip() for line in fh]
        found = [t for t in lines if t and not t.startswith("#")]
        return cls([*terms, *found], on_error=on_error)

    async def screen(self, request: ImageRequest) -> Screening:
        if self._pattern is None:
            return Screening(False)
        text = f"{request.prompt}\n{request.negative_prompt or ''}"
        found = sorted({m.group(1).lower() for m in self._pattern.finditer(text)})
        return Screening(bool(found), tuple(f"blocklist:{t}" for t in found))


class OpenAIModeration:
    """OpenAI's moderation endpoint (free): ``moderations.create(model=..., input=prompt)``.

    ``api_key`` defaults to the ``OPENAI_API_KEY`` environment variable (the SDK's own
    default); ``base_url`` points it elsewhere (the emulator: ``http://127.0.0.1:PORT/v1``).
    ``timeout_s`` bounds the call; a timeout or an error follows ``on_error``.
    """

    def __init__(self, model: str = "omni-moderation-latest", *, api_key: str | None = None,
                 base_url: str | None = None, timeout_s: float = 10.0,
                 on_error: OnError = "allow", http_client: Any = None) -> None:
        _check_on_error(on_error)
        if timeout_s <= 0:
            raise ConfigurationError("timeout_s must be > 0")
        register_secret(api_key)
        self.model = model
        self.on_error: OnError = on_error
        self.timeout_s = timeout_s
        self._api_key = api_key
        self._base_url = base_url
        self._http_client = http_client  # an httpx(2) AsyncClient of yours (tests, proxies)
        self._clients: PerLoop[openai.AsyncOpenAI] = PerLoop(self._new_client)

    def __repr__(self) -> str:
        return f"OpenAIModeration(model={self.model!r}, on_error={self.on_error!r})"

    def _new_client(self) -> openai.AsyncOpenAI:
        from .extras import load

        sdk: Any = load("openai", "openai", "OpenAIModeration")
        client: openai.AsyncOpenAI = sdk.AsyncOpenAI(
            api_key=self._api_key, base_url=self._base_url, max_retries=0,
            http_client=self._http_client)
        return client

    async def screen(self, request: ImageRequest) -> Screening:
        import openai

        client = self._clients.get()  # made (SDK imported) before the clock starts
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await client.moderations.create(
                    model=self.model, input=request.prompt, timeout=self.timeout_s)
        except (TimeoutError, openai.APITimeoutError):
            raise ScreenError(Outcome.TIMEOUT, f"no answer within {self.timeout_s:g}s") from None
        except openai.APIStatusError as exc:
            raise ScreenError(outcome_for_status(exc.status_code),
                              redact(f"HTTP {exc.status_code}: {exc.message}")[:300],
                              exc.status_code) from None
        except openai.APIConnectionError as exc:
            raise ScreenError(Outcome.CONNECTION_ERROR,
                              redact(f"{type(exc).__name__}: {exc}")[:300]) from None
        categories: set[str] = set()
        flagged = False
        for result in response.results:
            if result.flagged:
                flagged = True
                cats = result.categories.model_dump(by_alias=True)
                categories.update(name for name, hit in cats.items() if hit)
        return Screening(flagged, tuple(sorted(categories)))

    async def aclose(self) -> None:
        client = self._clients.peek()
        if client is not None and self._http_client is None:
            await client.close()


def screens(prescreen: Screen | Sequence[Screen] | None) -> tuple[Screen, ...]:
    """A chain's ``prescreen=`` argument as a tuple of screens, checked."""
    if prescreen is None:
        return ()
    items = (prescreen,) if isinstance(prescreen, Screen) else tuple(prescreen)
    for item in items:
        if not isinstance(item, Screen):
            raise ConfigurationError(
                f"{item!r} is not a pre-screen (needs model, on_error and async screen())")
    return items
