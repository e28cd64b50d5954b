"""OpenAI GPT Image (and the retired DALL-E) models through the ``openai`` SDK (imported on
first use).

``adapter`` drives a call; ``wire`` plans the request and maps every answer and error;
``masks`` prepares edit inputs."""

from .adapter import OpenAIProvider

__all__ = ["OpenAIProvider"]
