"""Azure OpenAI image models (GPT Image behind Azure deployments) through the ``openai`` SDK's
``AsyncAzureOpenAI`` client (imported on first use).

``adapter`` drives a call (it is the OpenAI adapter with Azure's client, URLs and auth);
``wire`` maps Azure's own answers (content filters, throttling) before OpenAI's table;
``cost`` prices ``usage`` at Azure's rates; ``emulated`` is the emulator's Azure API."""

from .adapter import AzureOpenAIProvider

__all__ = ["AzureOpenAIProvider"]
