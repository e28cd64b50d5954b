"""Shared state in Redis (redis-py's asyncio client, imported on first use): see
``backend.RedisState`` and ``docs/state.md``."""

from __future__ import annotations

from .backend import RedisState
from .link import ENV_URL

__all__ = ["ENV_URL", "RedisState"]
