"""Black Forest Labs' API over ``httpx``: submit a task, poll ``get_result``, download the
signed image URL at once (``adapter``); the wire format, statuses and error table are in
``wire``."""

from .adapter import DEFAULT_MODEL, BFLProvider

__all__ = ["DEFAULT_MODEL", "BFLProvider"]
