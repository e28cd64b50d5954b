"""Pointing a configured chain at an emulator, explicitly: every vendor's ``base_url`` becomes
the emulator's and every key comes from the emulator, so no real vendor can be called."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .vendors import VENDORS

if TYPE_CHECKING:
    from ..emulator import Emulator

#: What to send when the emulator accepts any non-empty key.
ANY_KEY = "emulated-key"


@dataclass(frozen=True)
class Emulated:
    """An emulator's root URL (``http://127.0.0.1:PORT``) and the keys it accepts: one for all
    vendors, one per vendor, or ``None`` for "any key"."""

    base_url: str
    api_keys: str | Mapping[str, str | None] | None = None

    @classmethod
    def from_emulator(cls, emulator: Emulator, base_url: str) -> Emulated:
        """The target for ``emulator`` served at ``base_url`` (e.g. by ``serve_in_thread``)."""
        return cls(base_url, dict(emulator.state.api_keys))

    def url_for(self, vendor: str) -> str:
        return self.base_url.rstrip("/") + VENDORS[vendor].emulator_suffix

    def key_for(self, vendor: str) -> str:
        keys = self.api_keys
        if keys is None or isinstance(keys, str):
            return keys or ANY_KEY
        return keys.get(vendor) or ANY_KEY
