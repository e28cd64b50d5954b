"""Google Gemini image models through ``google-genai`` (imported on first use).

``adapter`` drives a call; ``parse`` reads the answers and maps every error to an outcome."""

from .adapter import GeminiProvider

__all__ = ["GeminiProvider"]
