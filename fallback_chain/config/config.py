"""``Config``: a validated config file, and the chains, providers, budgets and ledgers it
describes. Relative paths in the file (ledger, storage, prices, secrets file) are relative to
the file's own folder; ``~`` is expanded; URLs such as ``s3://bucket/prefix`` are kept as
they are."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .build import BuildError, build_budget, build_policy, build_provider, build_quotas
from .errors import ConfigError, Loc, Problem
from .hints import did_you_mean
from .locate import Positions
from .schema import ChainConfig, ConfigFile, ProviderConfig
from .secrets_file import SecretsFile

if TYPE_CHECKING:
    from ..chain import Chain
    from ..clock import Clock
    from ..cost.budget import Budget
    from ..cost.catalogue import PriceCatalogue
    from ..cost.ledger import Ledger
    from ..cost.quotas import Quotas
    from ..events import Event
    from ..policy import Policy
    from ..prescreen import Screen
    from ..provider import Provider
    from ..state.backend import StateBackend
    from .emulated import Emulated

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True, slots=True)
class BuiltProvider:
    """One provider of a chain, built or not: ``provider`` or ``error`` is set."""

    spec: ProviderConfig
    provider: Provider | None
    error: ConfigError | None


class Config:
    """A loaded config file (see :func:`fallback_chain.config.load_config`).

    ``chain(name)`` builds a ready ``Chain``; ``chain_names``, ``default_chain``,
    ``chain_config(name)``, ``storage(name)`` and ``ledger_path(name)`` describe the file.
    Ledgers are opened once per file and shared; ``close()`` (or ``with``) flushes them.
    """

    def __init__(self, path: Path, file: ConfigFile, positions: Positions) -> None:
        self.path = path
        self.file = file
        self.positions = positions
        self.notes: list[Problem] = []  # warnings found when the file was loaded
        self.base_dir = path.resolve().parent
        self.secrets_file = (SecretsFile(Path(self.resolve_path(file.secrets.file)))
                             if file.secrets is not None else None)
        self._ledgers: dict[Path, Ledger] = {}
        self._state: StateBackend | None = None
        self._quotas: Quotas | None = None
        self._prices: dict[str, PriceCatalogue] = {}

    # ---------------------------------------------------------------------- describing

    @property
    def warnings(self) -> list[str]:
        """Every warning about the file, as ``FILE:LINE: field: message``."""
        return [n.render(self.path) for n in self.notes]

    def warnings_for(self, names: Iterable[str | None]) -> list[str]:
        """The warnings that matter for chains ``names`` (``None``: the default chain), plus
        those about the file as a whole."""
        wanted = {self.default_chain if n is None else n for n in names}
        return [n.render(self.path) for n in self.notes
                if n.loc[:1] != ("chains",) or n.loc[1] in wanted]

    @property
    def chain_names(self) -> list[str]:
        return list(self.file.chains)

    @property
    def default_chain(self) -> str:
        return self.file.default

    def chain_config(self, name: str | None = None) -> ChainConfig:
        """The validated ``[chains.NAME]`` table (default chain when ``name`` is ``None``)."""
        name = self._name(name)
        return self.file.chains[name]

    def resolve_path(self, value: str) -> str:
        """``value`` with ``~`` expanded and made absolute against the config file's folder;
        URLs are returned unchanged."""
        if _URL.match(value):
            return value
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else self.base_dir / path)

    def storage(self, name: str | None = None) -> str | None:
        """The chain's default output target (a local path or a URL), or ``None``."""
        value = self.chain_config(name).storage
        return None if value is None else self.resolve_path(value)

    def ledger_path(self, name: str | None = None) -> Path | None:
        value = self.chain_config(name).ledger
        return None if value is None else Path(self.resolve_path(value))

    def line(self, *loc: str | int) -> int | None:
        """The line of ``loc`` (or of its nearest enclosing table) in the file."""
        return self.positions.line(loc)

    def error(self, loc: Loc, message: str) -> ConfigError:
        return ConfigError(self.path, [Problem(self.positions.line(loc), loc, message)])

    # ---------------------------------------------------------------------- building

    def policy(self, name: str | None = None) -> Policy:
        return build_policy(self.chain_config(name))

    def budget(self, name: str | None = None) -> Budget | None:
        name = self._name(name)
        return build_budget(self.file.chains[name], name)

    def quotas(self) -> Quotas | None:
        """``[quotas]``: one ``Quotas`` for the file, shared by its chains (so a tenant's totals
        are one, whichever chain serves it), or ``None``."""
        if self._quotas is None:
            self._quotas = build_quotas(self.file.quotas)
        return self._quotas

    def ledger(self, name: str | None = None) -> Ledger | None:
        """The chain's ledger, opened once per file and shared by every chain naming it."""
        path = self.ledger_path(name)
        if path is None:
            return None
        if path not in self._ledgers:
            from ..cost.ledger import Ledger

            try:
                self._ledgers[path] = Ledger(path)
            except (OSError, RuntimeError) as exc:
                raise self.error(("chains", self._name(name), "ledger"),
                                 f"cannot open the ledger {path}: {exc}") from None
        return self._ledgers[path]

    def prices(self, name: str | None = None) -> PriceCatalogue | None:
        value = self.chain_config(name).prices
        if value is None:
            return None
        path = self.resolve_path(value)
        if path not in self._prices:
            from ..cost.catalogue import PriceCatalogue, PriceCatalogueError

            try:
                self._prices[path] = PriceCatalogue.load(path)
            except (OSError, PriceCatalogueError) as exc:
                raise self.error(("chains", self._name(name), "prices"), str(exc)) from None
        return self._prices[path]

    def build_providers(self, name: str | None = None, *, emulated: Emulated | None = None
                        ) -> list[BuiltProvider]:
        """Every provider of the chain, each built or with the error that stopped it (a missing
        key, a bad option): for preflights that report per provider."""
        name = self._name(name)
        prices = self.prices(name)
        out = []
        for i, spec in enumerate(self.file.chains[name].providers):
            try:
                provider = build_provider(spec, secrets=self.secrets_file, emulated=emulated,
                                          prices=prices)
            except BuildError as exc:
                loc: Loc = ("chains", name, "providers", i)
                if exc.field:
                    loc = (*loc, exc.field)
                out.append(BuiltProvider(spec, None, self.error(loc, str(exc))))
            else:
                out.append(BuiltProvider(spec, provider, None))
        return out

    def providers(self, name: str | None = None, *, emulated: Emulated | None = None
                  ) -> list[Provider]:
        """The chain's adapters. Raises ``ConfigError`` naming every provider that failed."""
        built = self.build_providers(name, emulated=emulated)
        failed = [p for b in built if b.error is not None for p in b.error.problems]
        if failed:
            raise ConfigError(self.path, failed)
        return [b.provider for b in built if b.provider is not None]

    def prescreen(self, name: str | None = None, *, emulated: Emulated | None = None
                  ) -> list[Screen]:
        """The chain's prompt pre-screens (``[[chains.NAME.prescreen]]``), in order."""
        from .prescreen import build_screen

        name = self._name(name)
        screens = []
        for i, spec in enumerate(self.file.chains[name].prescreen):
            try:
                screens.append(build_screen(spec, resolve_path=self.resolve_path,
                                            secrets=self.secrets_file, emulated=emulated))
            except BuildError as exc:
                loc: Loc = ("chains", name, "prescreen", i)
                raise self.error((*loc, exc.field) if exc.field else loc, str(exc)) from None
        return screens

    def chain(self, name: str | None = None, *, emulated: Emulated | None = None,
              ledger: bool = True, clock: Clock | None = None,
              on_event: Callable[[Event], None] | None = None, log: bool = True,
              seed: int | None = None) -> Chain:
        """A ready ``Chain``: providers, policy (with per-provider limits), budget, cost order,
        and the ledger subscribed (``ledger=False`` leaves it out).

        ``emulated`` points every provider at an emulator, explicitly (see :class:`Emulated`).
        """
        from ..chain import Chain

        name = self._name(name)
        spec = self.file.chains[name]
        providers = self.providers(name, emulated=emulated)
        screens = self.prescreen(name, emulated=emulated)
        try:
            policy = self.policy(name)
            chain = Chain(providers, policy=policy, name=name, clock=clock,
                          budget=self.budget(name), order=spec.order, on_event=on_event,
                          seed=seed, log=log, state=self.state(), quotas=self.quotas(),
                          validators=spec.validators,
                          prescreen=screens)
        except ValueError as exc:  # ConfigurationError included
            raise self.error(("chains", name), str(exc)) from None
        book = self.ledger(name) if ledger else None
        if book is not None:
            chain.events.subscribe(book)
        return chain

    def state(self) -> StateBackend | None:
        """The shared state backend (``RedisState``) when ``[state]`` or
        ``FALLBACK_CHAIN_REDIS_URL`` asks for one, else ``None`` (each chain keeps its own
        state). One backend per file, shared by its chains (each in its own namespace)."""
        if self._state is not None:
            return self._state
        from ..state.redis.link import ENV_URL

        spec = self.file.state
        url = os.environ.get(ENV_URL) or (
            self.secrets_file.get(ENV_URL) if self.secrets_file is not None else None)
        if not url and spec is not None:
            url = spec.url
        if not url:
            if spec is None:
                return None
            raise self.error(("state",), f"no Redis URL: set url here or {ENV_URL} in the "
                             "environment or the secrets file")
        from ..state.redis import RedisState

        try:
            self._state = RedisState(
                url, namespace=spec.namespace if spec is not None else None,
                on_unavailable=spec.on_unavailable if spec is not None else "local")
        except ValueError as exc:  # ConfigurationError included
            raise self.error(("state",), str(exc)) from None
        return self._state

    def close(self) -> None:
        """Flush and close the ledgers this config opened."""
        ledgers, self._ledgers = list(self._ledgers.values()), {}
        for book in ledgers:
            book.close()

    def __enter__(self) -> Config:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Config({str(self.path)!r}, chains={self.chain_names!r})"

    # ---------------------------------------------------------------------- internals

    def _name(self, name: str | None) -> str:
        if name is None:
            return self.default_chain
        if name not in self.file.chains:
            names = self.chain_names
            raise ConfigError(self.path, [Problem(None, (), (
                f"no chain called {name!r}; this file defines {', '.join(names)}"
                + did_you_mean(name, names)))])
        return name


