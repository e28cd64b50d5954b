"""Replicate's predictions API over ``httpx``: create (``Prefer: wait``), poll, cancel on
timeout, download the output URLs at once; built on :mod:`fallback_chain.providers.jobs`.

``adapter`` drives one prediction; ``wire`` holds the input, the prediction object and the
error mapping; ``emulated`` is the emulator's Replicate API; ``cost`` prices outputs."""

from .adapter import DEFAULT_MODEL, ReplicateProvider

__all__ = ["DEFAULT_MODEL", "ReplicateProvider"]
