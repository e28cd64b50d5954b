"""Gemini image models on Vertex AI (Google Cloud) through google-genai with ``vertexai=True``
(imported on first use).

``adapter`` drives a call (it is the Gemini adapter with Vertex's client, URLs, credentials
and prices); ``errors`` adds Vertex's own failures (credentials, daily quotas) to the Gemini
table; ``cost`` prices ``usageMetadata`` at Vertex's rates; ``emulated`` is the emulator's
Vertex API."""

from .adapter import VertexProvider

__all__ = ["VertexProvider"]
