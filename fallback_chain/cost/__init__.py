"""Cost accounting: what each attempt cost, and where that figure came from."""

from .settle import settle_cost

__all__ = ["settle_cost"]
