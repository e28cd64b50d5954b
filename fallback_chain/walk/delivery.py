"""Partial delivery: images a failed call still delivered (and were paid for) are kept, and
the rest of the request asks the next provider only for the missing count.

An adapter that makes several calls for one request (Gemini makes one per image) reports the
images it got when another of its calls failed as ``ProviderError(..., partial=reply)``. The
final result holds exactly the number of images asked for, and ``ChainResult.origins`` says
which provider and model made each one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..request import ImageRequest
    from ..results import GeneratedImage, ImageOrigin


class Delivered:
    """The images kept so far in one request, with who made them."""

    __slots__ = ("asked", "images", "origins", "request")

    def __init__(self, request: ImageRequest) -> None:
        self.request = request  # as the caller asked it
        self.asked = request.n
        self.images: list[GeneratedImage] = []
        self.origins: list[ImageOrigin] = []

    @property
    def missing(self) -> int:
        return self.asked - len(self.images)

    def keep(self, origin: ImageOrigin, images: list[GeneratedImage]) -> int:
        """Keep what is still missing of ``images``; returns how many are missing after."""
        taken = images[:self.missing]
        self.images.extend(taken)
        self.origins.extend([origin] * len(taken))
        return self.missing

    def complete(self, origin: ImageOrigin, images: list[GeneratedImage]
                 ) -> tuple[list[GeneratedImage], list[ImageOrigin]]:
        """The result's images and origins once ``images`` (a success) arrived."""
        if not self.images:  # the common case: one provider made them all
            return images, [origin] * len(images)
        taken = images[:self.missing]
        return [*self.images, *taken], [*self.origins, *[origin] * len(taken)]
