"""A queued batch in Redis: its settings (where the output goes), each item's outcome, counters.

Keys (``JOB`` is the job id, one per ``batch --queue`` run):

* ``fallback-chain:job:JOB`` — the job's settings (:class:`JobSpec`), read by every worker;
* ``…:results`` — a hash ``item id -> outcome`` (JSON). An outcome is recorded with ``HSETNX``:
  the first one counts, so a task delivered twice (a redelivery after a worker died) is counted
  once;
* ``…:counts`` — counters per status and per way of delivery, bumped in the same script as the
  outcome (progress across all workers is one ``HGETALL``);
* ``…:window`` — the latest pay-twice windows measured (vendor answer -> sidecar written).

Every key expires ``ttl_s`` after the job's last update (a week by default).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redis import Redis

PREFIX = "fallback-chain:job"
TTL_S = 7 * 24 * 3600
WINDOW_SAMPLES = 10_000

_RECORD = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
redis.call('HINCRBY', KEYS[2], 'how:' .. ARGV[4], 1)
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[5])
return 1
"""


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What a worker needs to serve a job's items: the output and how to reach it, the chain
    (a name of the worker's config file, or its default), the input (named in sidecars)."""

    job: str
    out: str
    source: str
    chain: str | None = None
    storage_options: dict[str, Any] = field(default_factory=dict)
    fsync: bool = True
    created_at: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> JobSpec:
        return cls(**json.loads(text))


def new_job_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(4)


class Jobs:
    """Job records in one Redis database (thread-safe: redis-py clients are)."""

    def __init__(self, redis: Redis, *, ttl_s: int = TTL_S) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self._record = redis.register_script(_RECORD)
        self._specs: dict[str, JobSpec] = {}

    @staticmethod
    def key(job: str, part: str = "") -> str:
        return f"{PREFIX}:{job}" + (f":{part}" if part else "")

    def create(self, spec: JobSpec) -> None:
        self.redis.set(self.key(spec.job), spec.to_json(), ex=self.ttl_s)

    def spec(self, job: str) -> JobSpec:
        """A job's settings (cached: they never change)."""
        found = self._specs.get(job)
        if found is None:
            raw = self.redis.get(self.key(job))
            if raw is None:
                raise LookupError(f"job {job!r} is unknown (expired, or another Redis database)")
            found = self._specs[job] = JobSpec.from_json(raw)
        return found

    def record(self, job: str, item_id: str, outcome: dict[str, Any]) -> bool:
        """Record ``item_id``'s outcome (``status``: ``delivered`` or ``failed``; ``how``);
        False when it already had one (that one stands)."""
        return bool(self._record(
            keys=[self.key(job, "results"), self.key(job, "counts")],
            args=[item_id, json.dumps(outcome, ensure_ascii=False), outcome["status"],
                  outcome.get("how", outcome["status"]), self.ttl_s]))

    def outcome(self, job: str, item_id: str) -> dict[str, Any] | None:
        raw = self.redis.hget(self.key(job, "results"), item_id)
        return None if raw is None else dict(json.loads(raw))

    def counts(self, job: str) -> dict[str, int]:
        raw = self.redis.hgetall(self.key(job, "counts"))
        return {_text(k): int(v) for k, v in raw.items()}

    def done(self, job: str) -> int:
        return int(self.redis.hlen(self.key(job, "results")))

    def outcomes(self, job: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every recorded outcome (streamed with ``HSCAN``)."""
        for item_id, raw in self.redis.hscan_iter(self.key(job, "results"), count=500):
            yield _text(item_id), dict(json.loads(raw))

    def add_window(self, job: str, seconds: float) -> None:
        """One pay-twice window measured by a worker (vendor answer -> sidecar written)."""
        key = self.key(job, "window")
        pipe = self.redis.pipeline(transaction=False)
        pipe.lpush(key, f"{seconds:.6f}")
        pipe.ltrim(key, 0, WINDOW_SAMPLES - 1)
        pipe.expire(key, self.ttl_s)
        pipe.execute()

    def windows(self, job: str) -> list[float]:
        return [float(x) for x in self.redis.lrange(self.key(job, "window"), 0, -1)]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
