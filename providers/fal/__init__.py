"""fal.ai's queue API over ``httpx``: submit a request, poll its status, read the result,
download the images (``adapter``); the wire format and error table are in ``wire``."""

from .adapter import DEFAULT_MODEL, FalProvider

__all__ = ["DEFAULT_MODEL", "FalProvider"]
