"""``load_config(path)``: read, check and validate a config file; every problem is reported
with the file, the line and the field."""

from __future__ import annotations

import math
import os
import re
import tomllib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from .config import Config
from .discover import ENV_VAR
from .errors import ConfigError, ConfigWarning, Loc, Problem
from .guard import find_secrets
from .hints import did_you_mean
from .locate import Positions
from .schema import POLICY_FIELDS, ConfigFile, ProviderConfig
from .tomlmodel import fields_at


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate the config file at ``path``.

    Raises ``ConfigError`` listing every problem as ``FILE:LINE: field: message``. Warnings
    (an unknown or retired model id, a secrets file others can read) are issued as
    ``ConfigWarning`` and kept in ``Config.warnings``.
    """
    path = Path(path).expanduser()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, [Problem(None, (), "no such file")]) from None
    except OSError as exc:
        raise ConfigError(path, [Problem(None, (), f"cannot read it: {exc}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(path, [Problem(line, (), f"not UTF-8 text: byte 0x{raw[exc.start]:02x} "
                                                   f"at column {column}")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [_syntax_problem(exc)]) from None
    where = Positions(text)
    refused = [Problem(where.line(loc), loc, message) for loc, message in find_secrets(data)]
    refused += [Problem(where.line(loc), loc, "must be a number, not nan")
                for loc in _nans(data)]
    if refused:
        raise ConfigError(path, refused)
    try:
        model = ConfigFile.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(e, where) for e in exc.errors()]
        raise ConfigError(path, sorted(problems, key=lambda p: p.line or 0)) from None
    config = Config(path, model, where)
    for note in _notes(config):
        config.notes.append(note)
        warnings.warn(note.render(path), ConfigWarning, stacklevel=2)
    return config


def _nans(value: Any, loc: Loc = ()) -> Iterator[Loc]:
    """Where the file says ``nan`` (TOML allows it; no setting means it: every comparison
    with NaN is false, so a NaN timeout or budget would silently never trigger)."""
    if isinstance(value, float) and math.isnan(value):
        yield loc
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _nans(item, (*loc, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _nans(item, (*loc, i))


def _syntax_problem(exc: tomllib.TOMLDecodeError) -> Problem:
    message = str(exc)
    m = re.search(r"\(at line (\d+), column (\d+)\)", message)
    if m is None:
        return Problem(None, (), f"not valid TOML: {message}")
    text = message[:m.start()].strip()
    return Problem(int(m[1]), (), f"not valid TOML: {text} (column {m[2]})")


# ---------------------------------------------------------------------------- errors

def _problem(error: ErrorDetails, where: Positions) -> Problem:
    loc: Loc = tuple(error["loc"])
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "config":
        loc = (*loc, *ctx.get("at", ()))
        message = str(ctx["message"])
    elif kind == "extra_forbidden":
        message = "unknown key" + _unknown_key_hint(loc)
    elif kind == "missing":
        message = "required"
    else:
        message = error["msg"]
        for prefix in ("Value error, ", "Assertion failed, "):
            message = message.removeprefix(prefix)
        if kind == "literal_error":
            message = message.replace("Input should be", "must be")
    line = where.line(loc)
    if kind == "missing" and len(loc) > 1:
        line = where.line(loc[:-1])
    return Problem(line, loc, message)


def _unknown_key_hint(loc: Loc) -> str:
    key = str(loc[-1])
    if key == "providers" and len(loc) >= 2 and loc[-2] == "policy":
        return ("; per-provider overrides go in the provider's own table: "
                "[[chains.NAME.providers]] ... policy = { ... }")
    fields = fields_at(ConfigFile, loc[:-1])
    if fields is None:
        return ""
    if key in POLICY_FIELDS and "policy" in fields:
        return f" (a policy setting: put it in policy = {{ {key} = ... }})"
    return did_you_mean(key, fields) or f"; valid keys here: {', '.join(sorted(fields))}"


# ---------------------------------------------------------------------------- warnings

def _notes(config: Config) -> Iterator[Problem]:
    for chain_name, chain in config.file.chains.items():
        for i, provider in enumerate(chain.providers):
            loc: Loc = ("chains", chain_name, "providers", i, "model")
            note = _model_note(provider)
            if note:
                yield Problem(config.positions.line(loc), loc, note)
    yield from _foreign_base_urls(config)
    secrets = config.secrets_file
    if secrets is not None:
        loc = ("secrets", "file")
        line = config.positions.line(loc)
        if not secrets.exists:
            yield Problem(line, loc, f"{secrets.path} does not exist; keys will come from the "
                                     "environment only")
        elif secrets.loose_permissions():
            yield Problem(line, loc, f"{secrets.path} can be read by other users; chmod 600 it")


def _foreign_base_urls(config: Config) -> Iterator[Problem]:
    """A file in the current folder (a cloned repository, say) that points a real vendor at
    another ``base_url`` would send your key for that vendor there: say so."""
    try:
        here = Path(config.path).resolve().parent == Path.cwd().resolve()
    except OSError:
        return
    if not here:
        return
    for chain_name, chain in config.file.chains.items():
        for i, provider in enumerate(chain.providers):
            if provider.base_url is None or not provider.vendor_info.needs_key:
                continue
            loc: Loc = ("chains", chain_name, "providers", i, "base_url")
            yield Problem(config.positions.line(loc), loc, (
                f"this config file is in the current folder and sends {provider.vendor} "
                f"requests, with your {provider.vendor} key, to {provider.base_url}; make sure "
                f"you trust it (a cloned repository's file can name any host), or use your own "
                f"file with --config or ${ENV_VAR}"))


def _model_note(provider: ProviderConfig) -> str | None:
    vendor = provider.vendor_info
    if not vendor.catalogued:
        return None
    from fallback_chain.providers import catalogue

    info = catalogue.lookup(provider.vendor, provider.model_id)
    if not info.known:
        known = [m.id for m in catalogue.models(provider.vendor)]
        return (f"{provider.vendor} model {provider.model_id!r} is not in the model catalogue "
                f"(providers/{provider.vendor}/models.json)"
                f"; it gets {_borrowed(info.source)}" + did_you_mean(provider.model_id, known))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reported once, as a ConfigWarning with its line
        return catalogue.warn_if_retired(info)


def _borrowed(source: str) -> str:
    if source.startswith("capabilities of "):
        return "the " + source
    return "the capabilities of the " + source.replace("vendor default family", "vendor's default "
                                                        "family")
