"""Reference images (``ImageRequest.reference_images``, e.g. a draft for its final): sent to
the providers whose model takes one, dropped for the others, which still serve the request.

A provider whose capabilities say ``reference_image`` gets the references as input images
(``images``: the GPT Image edits endpoint, Gemini's inline image parts), so adapters need
nothing of their own. A provider that takes none, or cannot take these (too many, an unusable
format: its own ``unsupported_reason`` says so), gets the request without them, and the
attempt's message records that the reference was not sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..provider import Provider
    from ..request import ImageRequest

DROPPED = "reference image not sent"


def fit_reference(request: ImageRequest, provider: Provider) -> tuple[ImageRequest, str | None]:
    """The request ``provider`` is sent, and the note to record when its reference was
    dropped (``None``: nothing dropped)."""
    references = request.reference_images
    if not references:
        return request, None
    without = request.model_copy(update={"reference_images": ()})
    if not provider.capabilities.reference_image:
        return without, f"{DROPPED}: {provider.name} takes no reference image"
    given = without.model_copy(update={"images": request.images + references})
    reason = provider.unsupported_reason(given)
    if reason is not None:
        return without, f"{DROPPED}: {reason}"
    return given, None


def with_note(note: str | None, message: str | None) -> str | None:
    """An attempt's message with the reference note first."""
    if note is None:
        return message
    return note if not message else f"{note}; {message}"
