"""The Celery application of ``fallback-chain worker`` and ``batch --queue``.

One factory, :func:`make_app`, for both sides: the broker is the Redis URL given with
``--queue`` (``redis://HOST:PORT/N``), results are not stored (outcomes go to the job's hash,
see :mod:`.jobs`), messages are JSON. The settings that make delivery safe:

* ``task_acks_late``: a message is acknowledged when its task has finished, so a worker that
  dies mid-item leaves the message unacknowledged and the broker delivers it again;
* ``visibility_timeout`` (Redis transport): how long an unacknowledged message waits before it
  is delivered again; the claim's lease (:mod:`.lease`) keeps a redelivery that comes while the
  first attempt still runs from generating the item a second time;
* ``worker_prefetch_multiplier = 1``: a worker reserves one message per slot of its pool, so
  a dead worker strands no more than its concurrency in messages;
* ``task_reject_on_worker_lost``: a task whose pool process died is redelivered, not acked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from celery import Celery

#: The queue every item goes to, and the task's name.
QUEUE = "fallback-chain"
TASK = "fallback_chain.generate_item"
#: Defaults: an unacknowledged message comes back after 5 minutes; a claim lives 30 s unless
#: renewed (every 10 s).
VISIBILITY_TIMEOUT_S = 300.0
RESTORE_INTERVAL_S = 10.0


def make_app(broker: str, *, visibility_timeout_s: float = VISIBILITY_TIMEOUT_S,
             restore_interval_s: float = RESTORE_INTERVAL_S,
             main: str = "fallback-chain") -> Celery:
    """A configured Celery app on the Redis ``broker`` (no task registered: see
    :func:`fallback_chain.distributed.task.register`)."""
    from celery import Celery

    if not broker.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"--queue must be a redis:// URL (got {broker.split('://')[0]}://...)")
    app = Celery(main, broker=broker, set_as_current=False)
    transport: dict[str, Any] = {
        "visibility_timeout": visibility_timeout_s,
        # look for messages of dead workers this often (every sweep scans)
        "unacked_restore_interval": max(1, round(restore_interval_s)),
        "unacked_restore_throttle": 1,
    }
    app.conf.update(
        broker_connection_retry_on_startup=True,
        broker_transport_options=transport,
        task_serializer="json", accept_content=["json"],
        task_ignore_result=True, result_backend=None,
        task_acks_late=True, task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        task_default_queue=QUEUE,
        task_routes={TASK: {"queue": QUEUE}},
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
        broker_pool_limit=None,
    )
    return app
