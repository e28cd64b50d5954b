"""Leonardo.Ai REST v1 over ``httpx``: submit a job, poll it, download the images.

``adapter`` drives a job; ``wire`` holds the request body, the answers and the error mapping."""

from .adapter import DEFAULT_MODEL_ID, LeonardoProvider

__all__ = ["DEFAULT_MODEL_ID", "LeonardoProvider"]
