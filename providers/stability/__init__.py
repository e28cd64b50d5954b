"""Stability AI's Stable Image API (v2beta) over ``httpx``: one multipart call per image.

``adapter`` makes the call; ``wire`` holds the form, the answers and the error mapping;
``emulated`` is the emulator's Stability API; ``cost`` turns credits into USD."""

from .adapter import DEFAULT_MODEL, StabilityProvider

__all__ = ["DEFAULT_MODEL", "StabilityProvider"]
