"""An item as a task message (plain JSON for Celery's ``json`` serializer) and back.

The message carries the item's id, its output name (the idempotency key sent to vendors), its
input line, its generation key, the validated request and the row as read (for the failures
file). A worker rebuilds the ``BatchItem`` from it without reading the input.
"""

from __future__ import annotations

from typing import Any

from ..batch.items import BatchItem
from ..request import ImageRequest

#: Bumped when the message's shape changes; a worker refuses a version it does not know.
VERSION = 1


def to_message(item: BatchItem) -> dict[str, Any]:
    return {"v": VERSION, "id": item.id, "name": item.name, "line": item.line, "key": item.key,
            "request": item.request.model_dump(mode="json", exclude_defaults=True),
            "row": item.row, "derived_id": item.derived_id}


def from_message(message: dict[str, Any]) -> BatchItem:
    if message.get("v") != VERSION:
        raise ValueError(f"task message version {message.get('v')!r} is not {VERSION}: "
                         "workers and `batch --queue` must run the same fallback-chain")
    request = ImageRequest.model_validate(message["request"])
    return BatchItem(str(message["id"]), str(message["name"]), int(message["line"]), request,
                     str(message["key"]), dict(message["row"]),
                     derived_id=bool(message.get("derived_id", False)))
