"""Where the config file is when ``--config`` is not given: the file named by
``$FALLBACK_CHAIN_CONFIG`` (set by the user, outside any project), then
``./fallback-chain.toml``. No pydantic here (the CLI calls it first)."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigNotFoundError

ENV_VAR = "FALLBACK_CHAIN_CONFIG"
DEFAULT_NAME = "fallback-chain.toml"

HOW_TO = (f"pass --config PATH, create ./{DEFAULT_NAME} (start from "
          f"examples/fallback-chain.toml; docs/config.md explains every field), or set "
          f"{ENV_VAR}=PATH. `fallback-chain demo` needs no config: it runs on emulated "
          f"providers.")


def find_config(explicit: str | os.PathLike[str] | None = None, *,
                cwd: str | os.PathLike[str] | None = None) -> Path:
    """The config file to use: ``explicit`` if given, else ``$FALLBACK_CHAIN_CONFIG``, else
    ``./fallback-chain.toml`` (in ``cwd``). The variable wins over the current folder: a
    folder may be a cloned repository, and its file should not replace the one you chose
    (a file found there that sends a vendor's requests elsewhere is warned about).

    Raises ``ConfigNotFoundError`` saying where it looked and what to do.
    """
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigNotFoundError(f"config file {path} does not exist (given with --config)")
        return path
    named = os.environ.get(ENV_VAR, "").strip()
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise ConfigNotFoundError(f"{ENV_VAR} names {path}, which does not exist")
        return path
    local = Path(cwd or ".") / DEFAULT_NAME
    if local.is_file():
        return local
    raise ConfigNotFoundError(f"no config file: no ./{DEFAULT_NAME} and {ENV_VAR} is not set; "
                              + HOW_TO)
