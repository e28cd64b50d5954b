"""``batch --prescreen SPEC`` (repeatable): prompt pre-screens added to the chain, in order,
after those of the config file.

``SPEC`` is ``moderation`` (OpenAI's moderation endpoint; the key from ``OPENAI_API_KEY``, or
the emulator's on an emulated run; ``moderation:block`` stops a request when the screen itself
fails, instead of letting it through) or ``blocklist:FILE`` (the terms of FILE, one per line,
``#`` comments). See docs/quality.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fallback_chain.prescreen import OnError, Screen

HELP = ("Screen every prompt before any image provider is called (repeatable, in order): "
        "'moderation' (OpenAI's moderation endpoint; 'moderation:block' stops a request when "
        "the screen itself fails) or 'blocklist:FILE' (terms one per line). A flagged prompt "
        "costs nothing and fails as content_policy.")


def cli_screens(values: list[str], emulator: tuple[str, str] | None) -> list[Screen]:
    """The screens ``values`` name; ``emulator`` (its root URL and key) when the run is
    emulated. ``ConfigurationError`` with a message for the user when one cannot be made."""
    from fallback_chain.errors import ConfigurationError

    try:
        return [_screen(v.strip(), emulator) for v in values]
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


def _screen(value: str, emulator: tuple[str, str] | None) -> Screen:
    from fallback_chain.prescreen import Blocklist, OpenAIModeration

    kind, _, arg = value.partition(":")
    if kind == "blocklist":
        if not arg.strip():
            raise ValueError("--prescreen blocklist:FILE needs a file of terms")
        try:
            screen = Blocklist.from_file(arg)
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"--prescreen {value}: cannot read {arg}: {exc}") from None
        if not screen.terms:
            raise ValueError(f"--prescreen {value}: {arg} lists no terms")
        return screen
    if kind == "moderation":
        if arg not in ("", "allow", "block"):
            raise ValueError(f"--prescreen {value}: use 'moderation', 'moderation:allow' or "
                             "'moderation:block'")
        on_error: OnError = "block" if arg == "block" else "allow"
        if emulator is None:
            return OpenAIModeration(on_error=on_error)
        from fallback_chain.config.emulated import Emulated

        url, key = emulator
        return OpenAIModeration(api_key=key, base_url=Emulated(url).url_for("openai"),
                                on_error=on_error)
    raise ValueError(f"--prescreen {value!r}: use 'moderation', 'moderation:block' or "
                     "'blocklist:FILE'")
