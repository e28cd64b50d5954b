"""The claim on an item: a key in Redis with a lease, so that one worker at a time generates it.

``SET key token NX PX lease_ms`` takes the claim; the token is a fencing number (``INCR`` of
one counter per output, so a later holder always has a larger token). While the item is being
generated, the holder renews the lease (``PEXPIRE`` only if the key still holds its token);
it releases the claim at the end (``DEL`` only if it still holds its token). A worker that dies
stops renewing: its claim expires ``lease_s`` later and a redelivered task may take it.

Before writing the result, the holder checks that the claim is still its own
(:meth:`Claim.held`): a worker paused for longer than its lease (a stopped VM, a GC pause of
minutes) finds its claim gone and does not overwrite what the new holder wrote. This is the
fencing the storage allows: an object store cannot compare a token on write, so the check and
the write are two steps (see docs/distributed.md, "What each guarantee rests on").
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redis import Redis

log = logging.getLogger("fallback_chain.distributed")

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass(frozen=True, slots=True)
class Claim:
    """One held claim (``token`` is its fencing number)."""

    claims: Claims
    key: str
    token: int

    def renew(self) -> bool:
        """Extend the lease; False when the claim is no longer ours (it expired)."""
        return bool(self.claims.script("renew")(keys=[self.key], args=[
            str(self.token), self.claims.lease_ms]))

    def held(self) -> bool:
        value = self.claims.redis.get(self.key)
        return value is not None and _text(value) == str(self.token)

    def release(self) -> bool:
        return bool(self.claims.script("release")(keys=[self.key], args=[str(self.token)]))


class Claims:
    """Claims on the items of one output (``scope``), with a lease of ``lease_s`` seconds."""

    def __init__(self, redis: Redis, scope: str, *, lease_s: float = 30.0,
                 prefix: str = "fallback-chain:claim") -> None:
        if lease_s <= 0:
            raise ValueError("lease_s must be > 0")
        self.redis = redis
        self.scope = scope
        self.lease_ms = max(1, int(lease_s * 1000))
        self.prefix = prefix
        self._scripts: dict[str, Any] = {}
        self._lock = threading.Lock()

    def script(self, name: str) -> Any:
        with self._lock:
            if name not in self._scripts:
                source = {"renew": _RENEW, "release": _RELEASE}[name]
                self._scripts[name] = self.redis.register_script(source)
            return self._scripts[name]

    def key(self, item: str) -> str:
        return f"{self.prefix}:{self.scope}:{item}"

    def acquire(self, item: str) -> Claim | None:
        """The claim on ``item``, or None while another worker holds it."""
        token = int(self.redis.incr(f"{self.prefix}:{self.scope}:~fence"))
        key = self.key(item)
        if self.redis.set(key, str(token), nx=True, px=self.lease_ms):
            return Claim(self, key, token)
        return None

    def remaining_s(self, item: str) -> float:
        """Seconds left on another worker's lease of ``item`` (0 when none)."""
        ms = int(self.redis.pttl(self.key(item)))
        return max(0.0, ms / 1000.0)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Renewer:
    """Renews every registered claim every ``interval_s`` seconds on a daemon thread; a claim
    whose renewal fails (it expired: the worker was paused too long) is marked lost."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._claims: dict[str, Claim] = {}
        self.lost: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="claim-renewer", daemon=True)
        self._thread.start()

    def add(self, claim: Claim) -> None:
        with self._lock:
            self._claims[claim.key] = claim
            self.lost.discard(claim.key)

    def remove(self, claim: Claim) -> bool:
        """Stop renewing ``claim``; False when a renewal found it lost."""
        with self._lock:
            self._claims.pop(claim.key, None)
            lost = claim.key in self.lost
            self.lost.discard(claim.key)
        return not lost

    def still_held(self, claim: Claim) -> bool:
        """False once a renewal found ``claim`` expired."""
        with self._lock:
            return claim.key not in self.lost

    def _loop(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self.interval_s):
            with self._lock:
                claims = list(self._claims.values())
            now = time.monotonic()
            for claim in claims:
                try:
                    ok = claim.renew()
                except Exception as exc:  # Redis unreachable: try again next round
                    log.warning("renewing the claim %s failed: %s", claim.key, exc)
                    continue
                if not ok:
                    with self._lock:
                        if self._claims.get(claim.key) is not claim:
                            continue  # released meanwhile: not lost
                        self.lost.add(claim.key)
                    log.warning("the claim %s expired before it was renewed (%.2fs since "
                                "the last round)", claim.key, now - last)
            last = now

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
