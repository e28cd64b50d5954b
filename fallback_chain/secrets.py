"""Keep API keys out of everything the library writes: messages, logs, records, files.

Adapters register every key they hold with :func:`register_secret`; :class:`ProviderError`,
the router and the command line pass text through :func:`redact`, so a vendor that echoes a
key (or a traceback that contains one) cannot leak it. The library's own loggers
(``fallback_chain``, ``fallback_chain.batch``, ``fallback_chain.state``) carry a
:class:`RedactingFilter`, so a message, a traceback or a stack logged there is masked before
any handler sees it; attach the filter to a handler of your own to cover other loggers too.

What counts as a leak: the whole key, and any run of :data:`FRAGMENT` (8) or more of its
characters, e.g. a vendor echoing a truncated key ("sk-proj-abcdefgh1234...") or a key cut by
a line wrap; the whole token around such a piece (the run of characters keys are made of) is
masked. A shorter piece is not masked: vendors show a key's first three and last four
characters ("sk-abc***...wxyz") to say which key they rejected, and that is kept. Pieces are
masked for keys of :data:`MIN_FRAGMENTED` (32) characters or more, which every vendor's key
is (a Leonardo UUID has 36, a Gemini key 39, an OpenAI key 50 or more); a shorter secret
(test and emulator keys such as ``not-the-emulator-key``) is masked only whole, so that the
ordinary words it is made of ("emulator") stay readable everywhere else.
"""

from __future__ import annotations

import logging
import re
import threading

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None
_fragments: frozenset[str] = frozenset()
_runs: re.Pattern[str] | None = None

#: Shapes of well-known key formats, masked even if they were never registered.
_KNOWN_SHAPES = re.compile(
    r"(sk-[A-Za-z0-9_\-]{16,}|AIza[0-9A-Za-z_\-]{30,}|Bearer\s+[A-Za-z0-9._\-]{16,})"
)
MASK = "***"
#: The shortest piece of a registered key that is masked on its own.
FRAGMENT = 8
#: Keys at least this long are masked piece by piece too (see the module docstring).
MIN_FRAGMENTED = 32
#: The library's loggers; each carries a :class:`RedactingFilter`.
LOGGERS = ("fallback_chain", "fallback_chain.batch", "fallback_chain.state")


def register_secret(value: str | None) -> None:
    """Remember ``value`` so that :func:`redact` masks it (and its long pieces) wherever it
    appears."""
    global _pattern, _fragments, _runs
    if not value or len(value) < 6:
        return
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)
        pattern = re.compile("|".join(re.escape(s) for s in ordered))
        long_ones = [s for s in _secrets if len(s) >= MIN_FRAGMENTED]
        fragments = frozenset(s[i:i + FRAGMENT] for s in long_ones
                              for i in range(len(s) - FRAGMENT + 1))
        runs = None
        if long_ones:  # a piece of a key lies inside a run of the characters keys are made of
            alphabet = "".join(sorted(set("".join(long_ones))))
            runs = re.compile(f"[{_class_escape(alphabet)}]{{{FRAGMENT},}}")
        _pattern, _fragments, _runs = pattern, fragments, runs


def redact(text: str) -> str:
    """``text`` with every registered secret, every run of characters holding a piece of one
    (:data:`FRAGMENT` characters or more) and every key-shaped token replaced by ``***``."""
    if not text:
        return text
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    runs, fragments = _runs, _fragments
    if runs is not None:
        text = runs.sub(lambda m: _mask_run(m, fragments), text)
    return _KNOWN_SHAPES.sub(MASK, text)


def _mask_run(match: re.Match[str], fragments: frozenset[str]) -> str:
    run = match.group()
    for i in range(len(run) - FRAGMENT + 1):
        if run[i:i + FRAGMENT] in fragments:
            return MASK
    return run


def _class_escape(chars: str) -> str:
    """``chars`` escaped for use inside ``[...]``."""
    return "".join("\\" + c if c in "\\]^-[" else c for c in chars)


def mask_key(value: str | None) -> str:
    """A short, safe description of a key for display: its length and nothing else."""
    return "<not set>" if not value else f"<set, {len(value)} chars>"


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in a record's message, traceback and stack, in
    place, before any handler formats it (the traceback is rendered here, masked, and the live
    exception dropped from the record). It never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def redact_record(record: logging.LogRecord) -> None:
    """Mask secrets in ``record`` (see :class:`RedactingFilter`)."""
    if getattr(record, "_fallback_chain_redacted", False):
        return
    try:
        message = record.getMessage()
    except Exception:  # a broken format: leave it to logging's own error report
        return
    record.msg, record.args = redact(message), ()
    if record.exc_info and record.exc_info[0] is not None:
        if not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.exc_info = None
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    record._fallback_chain_redacted = True


_FILTER = RedactingFilter()


def protect_loggers(*names: str) -> None:
    """Attach the redacting filter to the loggers ``names`` (idempotent)."""
    for name in names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


protect_loggers(*LOGGERS)
