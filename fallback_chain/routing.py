"""Where the router's classes used to live; they are in ``fallback_chain.walk`` now."""

from .errors import ChainStoppedError
from .walk import RequestRun, Router, Slot

__all__ = ["ChainStoppedError", "RequestRun", "Router", "Slot"]
