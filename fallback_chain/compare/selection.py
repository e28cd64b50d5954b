"""Turn ``--providers`` (and ``--config`` / ``--chain`` / ``--emulated``) into adapters.

* ``vendor`` / ``vendor:model`` items build adapters that read their keys from the
  environment, or, with an emulator target, point at the emulator with its key.
* Other items are provider names (keys) of a chain in the config file (``--chain``, else the
  file's default chain); they are built by the config loader (keys from the environment or
  the secrets file the config names) and bring that chain's policy. When the config file is
  read anyway, a vendor-looking item that is also a provider key of the chain (``gemini``
  for an unnamed Gemini provider) is the configured provider.
* The config file is read when an item is not a vendor spec, when ``--providers`` is
  omitted, or when ``config`` or ``chain`` is given.
* No ``--providers``: every provider of the config's chain; with ``--emulated`` and no config
  file, the three vendors' default models.

Emulation is only ever what the caller asked for: a configured provider is pointed at the
emulator when (and only when) an emulator target is given, never replaced by a fake.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ConfigurationError
from .specs import ProviderSpec, build_vendor_provider, parse_specs, vendors

if TYPE_CHECKING:
    from ..config import Config, Emulated
    from ..cost.ledger import Ledger
    from ..policy import Policy
    from ..provider import Provider



def default_emulated() -> str:
    """``--emulated`` without ``--providers``: every vendor the emulator serves."""
    from .. import registry

    return ",".join(registry.where(lambda cls: cls.emulator_api is not None))


@dataclass(slots=True)
class Selection:
    """The providers to compare, their row labels, the policy to run them with, the config
    file they came from (if any) and its chain's cost ledger (not when emulated): subscribe
    it to the comparison's events, then ``close()`` the selection to flush it."""

    providers: list[Provider]
    labels: list[str]
    policy: Policy | None
    config_path: str | None = None
    chain: str | None = None
    ledger: Ledger | None = None
    _config: Config | None = None

    def close(self) -> None:
        if self._config is not None:
            self._config.close()


def select_providers(text: str | None, *, config: str | os.PathLike[str] | None = None,
                     chain: str | None = None, emulated: Emulated | None = None,
                     emulated_policy: Policy | None = None) -> Selection:
    """Build the providers ``text`` names (see the module doc).

    Raises ``ConfigurationError`` (``ConfigError`` for the config file, naming its line) for
    an unknown name, a missing key or a bad spec.
    """
    specs = parse_specs(text) if text is not None else None
    wants_config = (specs is None or any(not s.is_vendor for s in specs)
                    or config is not None or chain is not None)
    # Only "--emulated and nothing else" may go without a config file.
    optional = specs is None and emulated is not None and config is None and chain is None
    names = [s.text for s in specs or () if not s.is_vendor]
    loaded = (_load_config(config, required=not optional, names=names,
                           emulated=emulated is not None) if wants_config else None)
    if loaded is None:
        specs = specs if specs is not None else parse_specs(default_emulated())
        providers = [_vendor(s, emulated) for s in specs]
        return Selection(providers, [s.text for s in specs],
                         emulated_policy if emulated is not None else None)
    try:
        return _from_config(loaded, specs, chain, emulated)
    except BaseException:
        loaded.close()
        raise


def _vendor(spec: ProviderSpec, emulated: Emulated | None) -> Provider:
    if emulated is None or spec.vendor is None:
        return build_vendor_provider(spec)
    return build_vendor_provider(spec, api_key=emulated.key_for(spec.vendor),
                                 base_url=emulated.base_url, fast_poll=True)


def _load_config(path: str | os.PathLike[str] | None, *, required: bool, names: list[str],
                 emulated: bool = False) -> Config | None:
    """The config file; with ``emulated`` (no key is read) its warnings about the secrets
    file are left out, as in ``generate`` and ``batch``."""
    import warnings

    from ..config import ConfigNotFoundError, ConfigWarning, find_config, load_config

    try:
        found = find_config(path)
    except ConfigNotFoundError as exc:
        if not required:
            return None
        if names:
            raise ConfigurationError(
                f"{', '.join(map(repr, names))}: not a vendor ({', '.join(vendors())}), so it "
                f"must name a provider in a config file: {exc}") from None
        raise ConfigurationError(
            "which providers? Name them with --providers vendor[:model],... (e.g. "
            "'gemini,openai:gpt-image-2'), add --emulated to try the command without keys, "
            f"or take them from a config file: {exc}") from None
    if not emulated:
        return load_config(found)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        loaded = load_config(found)
    for note in loaded.notes:
        if note.loc[:1] != ("secrets",):
            warnings.warn(note.render(loaded.path), ConfigWarning, stacklevel=2)
    return loaded


def _from_config(config: Config, specs: list[ProviderSpec] | None, chain: str | None,
                 emulated: Emulated | None) -> Selection:
    name = chain or config.default_chain
    table = config.chain_config(name)  # ConfigError for an unknown chain
    keys = [p.key for p in table.providers]
    wanted = specs if specs is not None else [ProviderSpec(k) for k in keys]
    built = config.build_providers(name, emulated=emulated)
    providers: list[Provider] = []
    for spec in wanted:
        if spec.is_vendor and spec.text not in keys:
            providers.append(_vendor(spec, emulated))
            continue
        index = _find(config, name, keys, spec.text)
        entry = built[index]
        if entry.provider is None:
            raise entry.error or config.error(("chains", name, "providers", index),
                                              "could not be built")
        providers.append(entry.provider)
    ledger = config.ledger(name) if emulated is None else None  # emulated spend is not spend
    return Selection(providers, [s.text for s in wanted], config.policy(name),
                     str(config.path), name, ledger, config)


def _find(config: Config, chain: str, keys: list[str], wanted: str) -> int:
    if wanted in keys:
        return keys.index(wanted)
    elsewhere = [c for c in config.chain_names if c != chain
                 and wanted in [p.key for p in config.chain_config(c).providers]]
    hint = f"; chain {elsewhere[0]!r} has it (add --chain {elsewhere[0]})" if elsewhere else ""
    raise config.error(("chains", chain, "providers"),
                       f"{wanted!r} is not a provider of chain {chain!r} (its providers: "
                       f"{', '.join(keys)}){hint}; or use a vendor spec such as "
                       f"'{vendors()[0]}:MODEL'")
