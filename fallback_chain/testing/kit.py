"""What the plugin's fixtures hand out: an emulator with adapters wired to it, a factory of
chains of fakes, and a virtual-time loop. Usable without pytest too."""

from __future__ import annotations

import contextlib
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ..chain import Chain
    from ..emulator import Emulator
    from ..provider import Provider
    from ..providers.fake import FakeProvider
    from ..providers.gemini import GeminiProvider
    from ..providers.leonardo import LeonardoProvider
    from ..providers.openai import OpenAIProvider
    from ..vtime import VirtualClock, VirtualTimeLoop

T = TypeVar("T")

#: The host the in-process adapters talk to (no socket is opened).
EMULATOR_HOST = "http://emulator.test"


class EmulatorKit:
    """One emulator (``.emulator``) and adapters connected to it in-process (no socket), so
    they work on virtual time too.

    ``kit.script("openai", "429,500,ok")`` sets a fault script; ``kit.openai()``,
    ``kit.gemini()``, ``kit.leonardo()`` build adapters (keyword arguments pass through);
    ``kit.chain(...)`` builds a chain of them (default: OpenAI then Gemini) that the kit
    closes at the end; ``kit.serve()`` serves the emulator on a loopback port instead.
    """

    def __init__(self, faults: Any = None, *, api_key: str = "test-key",
                 replay: str | Path | None = None) -> None:
        from ..emulator import Emulator

        self.api_key = api_key
        self.emulator: Emulator = Emulator(faults, api_keys=api_key, replay=replay)
        self._chains: list[Chain] = []

    def script(self, vendor: str, script: str | list[Any], **settings: Any) -> None:
        """Set ``vendor``'s fault script (``"429,500,ok"``; see ``docs/emulator.md``)."""
        self.emulator.script(vendor, script, **settings)

    def openai(self, model: str | None = None, **options: Any) -> OpenAIProvider:
        import httpx2

        from ..providers.openai import OpenAIProvider

        http = httpx2.AsyncClient(transport=self.emulator.httpx2_transport())
        options.setdefault("http_client", http)
        return OpenAIProvider(model or OpenAIProvider.default_model, api_key=self.api_key,
                              base_url=f"{EMULATOR_HOST}/v1", **options)

    def gemini(self, model: str | None = None, **options: Any) -> GeminiProvider:
        from ..providers.gemini import GeminiProvider

        options.setdefault("transport", self.emulator.httpx2_transport())
        return GeminiProvider(model or GeminiProvider.default_model, api_key=self.api_key,
                              base_url=EMULATOR_HOST, **options)

    def leonardo(self, model: str | None = None, **options: Any) -> LeonardoProvider:
        from ..providers.leonardo import LeonardoProvider

        options.setdefault("transport", self.emulator.httpx_transport())
        return LeonardoProvider(model or LeonardoProvider.default_model, api_key=self.api_key,
                                base_url=EMULATOR_HOST, **options)

    def chain(self, *providers: Provider, **options: Any) -> Chain:
        """A chain of ``providers`` (default: ``openai()`` then ``gemini()``); ``log=False``
        unless given."""
        from ..chain import Chain

        options.setdefault("log", False)
        chain = Chain(list(providers) or [self.openai(), self.gemini()], **options)
        self._chains.append(chain)
        return chain

    @property
    def requests(self) -> Any:
        """The emulator's request log (``kit.requests.count(vendor="openai")``)."""
        return self.emulator.log

    @contextlib.contextmanager
    def serve(self) -> Iterator[str]:
        """Serve the emulator on a free loopback port; yields its base URL."""
        from ..emulator import serve_in_thread

        with serve_in_thread(self.emulator) as base_url:
            yield base_url

    def close(self) -> None:
        chains, self._chains = self._chains, []
        for chain in chains:
            chain.close()


class FakeChainFactory:
    """``fake_chain("429,ok", "ok", deadline_s=5)``: a chain of ``FakeProvider``s named
    ``fake-1``, ``fake-2``... from scripts (a comma-separated string or a list of items:
    statuses, outcome names, ``"ok"``); a ``FakeProvider`` passes through as is. Chain options
    pass through (``log=False`` unless given)."""

    def __init__(self) -> None:
        self._chains: list[Chain] = []

    def __call__(self, *providers: FakeProvider | str | Sequence[Any],
                 **options: Any) -> Chain:
        from ..chain import Chain
        from ..providers.fake import FakeProvider

        built: list[Provider] = []
        for i, item in enumerate(providers or ("ok",), 1):
            if isinstance(item, FakeProvider):
                built.append(item)
                continue
            script = [s.strip() for s in item.split(",")] if isinstance(item, str) else item
            built.append(FakeProvider(f"fake-{i}", [_item(s) for s in script]))
        options.setdefault("log", False)
        chain = Chain(built, **options)
        self._chains.append(chain)
        return chain

    def close(self) -> None:
        chains, self._chains = self._chains, []
        for chain in chains:
            chain.close()


def _item(item: Any) -> Any:
    return int(item) if isinstance(item, str) and item.isdigit() else item


class VirtualTime:
    """A virtual-time event loop for one test: ``clock`` for the chain, ``run(coro)`` to run
    on it (sleeps, timeouts and cooldowns take no real time), ``now`` its time in seconds.
    Every ``run`` of a test shares the loop, so time carries on between them."""

    def __init__(self, start: float = 0.0) -> None:
        from ..vtime import VirtualClock, VirtualTimeLoop

        self.clock: VirtualClock = VirtualClock()
        self.loop: VirtualTimeLoop = VirtualTimeLoop(start)

    @property
    def now(self) -> float:
        return self.loop.time()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        if not self.loop.is_closed():
            try:
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            finally:
                self.loop.close()


def faults_of(marker_args: Sequence[Any], marker_kwargs: Mapping[str, Any]) -> Any:
    """The faults named by an ``fc_faults`` marker: one mapping/TOML text/path, or keywords."""
    if marker_args:
        return marker_args[0]
    return dict(marker_kwargs) or None
