"""Retry, advance, stop: the rules the router follows after each outcome."""

from .backoff import Backoff
from .policy import Policy
from .retry_after import parse_duration, parse_retry_after
from .rules import DEFAULT_RULES, Rule

__all__ = ["DEFAULT_RULES", "Backoff", "Policy", "Rule", "parse_duration", "parse_retry_after"]
