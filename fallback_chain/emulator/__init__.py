"""Emulated vendor APIs (OpenAI Images, Gemini, Leonardo) with fault injection, on loopback.

See ``docs/emulator.md``. Main names::

    from fallback_chain.emulator import Emulator, FaultConfig, serve_in_thread

Submodules are loaded on first use so importing this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports
from ..extras import require

require("emulator", "the emulator")

if TYPE_CHECKING:
    from .app import Emulator
    from .faults import Fault, FaultConfig, FaultConfigError
    from .log import LogEntry, RequestLog
    from .server import serve, serve_in_thread

__all__ = ["Emulator", "Fault", "FaultConfig", "FaultConfigError", "LogEntry", "RequestLog",
           "serve", "serve_in_thread"]

_WHERE = {
    "Emulator": ".app", "Fault": ".faults", "FaultConfig": ".faults",
    "FaultConfigError": ".faults", "LogEntry": ".log", "RequestLog": ".log",
    "serve": ".server", "serve_in_thread": ".server",
}


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
