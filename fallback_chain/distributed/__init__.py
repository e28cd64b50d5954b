"""Batches on Celery workers: ``fallback-chain worker --queue redis://...`` and
``fallback-chain batch INPUT --out DIR_OR_S3 --queue redis://...`` (docs/distributed.md).

One module per idea: :mod:`.app` (the Celery app factory), :mod:`.task` (the item task),
:mod:`.serve` (one item: claim, generate, write, release), :mod:`.lease` (the claim with its
lease and fencing token), :mod:`.jobs` (a job's settings, outcomes and counters in Redis),
:mod:`.message` (an item as a task message), :mod:`.enqueue` (streamed, bounded enqueuing),
:mod:`.assemble` (the manifest from the sidecars), :mod:`.coordinator` (``batch --queue``),
:mod:`.runtime` (what a worker process holds).

Needs the ``celery`` extra: ``pip install 'fallback-chain[celery]'``.
"""
