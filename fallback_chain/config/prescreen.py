"""A chain's ``[[chains.NAME.prescreen]]`` tables as the screens of
:mod:`fallback_chain.prescreen`: ``Blocklist`` (terms and/or a file of terms) and
``OpenAIModeration`` (its key from ``key_env``, the environment or the secrets file; an emulated
run asks the emulator, with the emulator's key)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .build import BuildError, resolve_key
from .schema import PrescreenConfig, ProviderConfig

if TYPE_CHECKING:
    from ..prescreen import Screen
    from .emulated import Emulated
    from .secrets_file import SecretsFile


def build_screen(spec: PrescreenConfig, *, resolve_path: Callable[[str], str],
                 secrets: SecretsFile | None = None, emulated: Emulated | None = None
                 ) -> Screen:
    """The screen ``spec`` describes; ``BuildError`` (naming the field) when it cannot be
    built (an unreadable file of terms, no key)."""
    from ..prescreen import Blocklist, OpenAIModeration

    if spec.kind == "blocklist":
        if not spec.file:
            return Blocklist(spec.terms, on_error=spec.on_error)
        path = resolve_path(spec.file)
        try:
            return Blocklist.from_file(path, terms=spec.terms, on_error=spec.on_error)
        except (OSError, UnicodeDecodeError) as exc:
            raise BuildError(f"cannot read the blocklist {path}: {exc}", "file") from None
    if emulated is not None:
        api_key: str | None = emulated.key_for("openai")
        base_url: str | None = emulated.url_for("openai")
    else:
        key_spec = ProviderConfig(vendor="openai", key_env=spec.key_env)
        try:
            api_key = resolve_key(key_spec, secrets)  # None: the SDK reads OPENAI_API_KEY
        except BuildError as exc:
            raise BuildError(str(exc).replace("provider 'openai'", "the moderation pre-screen"),
                             "key_env" if spec.key_env else "kind") from None
        base_url = None
    return OpenAIModeration(spec.model or "omni-moderation-latest", api_key=api_key,
                            base_url=base_url, timeout_s=spec.timeout_s or 10.0,
                            on_error=spec.on_error)
