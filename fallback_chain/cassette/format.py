"""The cassette file: one JSON document per vendor exchange (``NNNN-<vendor>-<endpoint>.json``).

.. code-block:: json

    {"format": "fallback-chain-cassette/1", "sequence": 3, "vendor": "openai",
     "endpoint": "generate", "recorded_at": "2026-12-06T21:00:00Z",
     "request": {"method": "POST", "path": "/v1/images/generations",
                 "shape": {"model": "gpt-image-1", "size": "1024x1024", "n": 1}},
     "response": {"status": 429, "headers": {"retry-after": "2"}, "body": {"error": {}}},
     "error": null}

``response.body`` is JSON; a body that is not JSON is ``response.body_text``; an image body is
``response.body_image`` (a placeholder). ``error`` names a connection failure instead of a
response: ``timeout``, ``reset`` or ``cut``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT = "fallback-chain-cassette/1"


class CassetteError(ValueError):
    """A file that is not a cassette of this format."""


@dataclass(frozen=True, slots=True)
class Cassette:
    """One recorded exchange, as read from its file."""

    path: Path
    data: dict[str, Any]

    @property
    def vendor(self) -> str:
        return str(self.data["vendor"])

    @property
    def endpoint(self) -> str:
        return str(self.data["endpoint"])

    @property
    def method(self) -> str:
        return str(self.data["request"]["method"])

    @property
    def path_key(self) -> str:
        return str(self.data["request"]["path"])

    @property
    def response(self) -> dict[str, Any] | None:
        response = self.data.get("response")
        return response if isinstance(response, dict) else None

    @property
    def error(self) -> str | None:
        error = self.data.get("error")
        return str(error) if error else None


def read_cassette(path: str | Path) -> Cassette:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CassetteError(f"{path}: not readable as JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CassetteError(f"{path}: not a fallback-chain cassette ({FORMAT})")
    return Cassette(path, data)


def load_cassettes(directory: str | Path) -> list[Cassette]:
    """Every cassette in ``directory``, in recording order."""
    root = Path(directory)
    if not root.is_dir():
        raise CassetteError(f"{root}: no such cassette folder")
    found = [read_cassette(p) for p in sorted(root.glob("*.json"))]
    return sorted(found, key=lambda c: (int(c.data.get("sequence", 0)), c.path.name))


def endpoint_of(vendor: str, method: str, path: str) -> str:
    """A short name for the vendor endpoint a request went to."""
    if path.endswith("/images/generations") or path.endswith(":generateContent"):
        return "generate"
    if path.endswith("/images/edits"):
        return "edit"
    if "/api/rest/v1/generations" in path:
        return "submit" if method == "POST" else "poll"
    if "/models" in path:
        return "models"
    return "download" if method == "GET" else "other"
