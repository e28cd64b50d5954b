"""Resilience strategies, one module each: circuit breaker and cooldowns."""

from .breaker import Admission, CircuitBreaker
from .cooldown import CooldownStore, MemoryCooldowns

__all__ = ["Admission", "CircuitBreaker", "CooldownStore", "MemoryCooldowns"]
