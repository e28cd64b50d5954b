"""What a cassette may keep (``fallback_chain.cassette.scrub``)."""

from __future__ import annotations

import base64

from fallback_chain.cassette.scrub import expand, image_for, request_shape, scrub
from fallback_chain.imaging import inspect_image, placeholder_image

KEY = "AIzaSyPlantedKeyQwErTyUiOpAsDfGhJkLzXcVb"  # a Gemini-shaped key, never registered


def test_images_become_placeholders_that_replay_to_the_same_format_and_size() -> None:
    jpeg = placeholder_image(640, 480, fmt="jpeg")
    body = {"candidates": [{"content": {"parts": [{"inlineData": {
        "mimeType": "image/jpeg", "data": base64.b64encode(jpeg).decode()}}]}}]}
    kept = scrub(body)
    part = kept["candidates"][0]["content"]["parts"][0]["inlineData"]
    assert part["data"] == "fallback-chain:image;image/jpeg;640x480"
    again = base64.b64decode(expand(kept)["candidates"][0]["content"]["parts"][0]
                             ["inlineData"]["data"])
    info = inspect_image(again)
    assert (info.mime_type, info.width, info.height) == ("image/jpeg", 640, 480)
    assert image_for("not a placeholder") is None


def test_urls_lose_their_query_and_secret_fields_their_values() -> None:
    body = {"url": "https://cdn.example/a/b.png?X-Amz-Signature=abc123&X-Amz-Expires=60",
            "apiKey": "anything-at-all", "session_token": "t0k3n-value",
            "message": f"API key not valid: {KEY}. See https://x.example/help?sig=zzz#frag"}
    kept = scrub(body)
    assert kept["url"] == "https://cdn.example/a/b.png?scrubbed"
    assert kept["apiKey"] == "***" and kept["session_token"] == "***"
    assert KEY not in kept["message"] and "sig=zzz" not in kept["message"]
    assert "https://x.example/help?scrubbed" in kept["message"]


def test_the_request_shape_drops_the_prompt_unless_asked() -> None:
    body = {"model": "gpt-image-2", "prompt": "private words", "size": "1024x1024", "n": 2}
    assert request_shape(body, include_prompt=False) == {
        "model": "gpt-image-2", "size": "1024x1024", "n": 2}
    assert request_shape(body, include_prompt=True)["prompt"] == "private words"
    gemini = {"contents": [{"parts": [{"text": "private words"}]}],
              "generationConfig": {"responseModalities": ["IMAGE"]}}
    shape = request_shape(gemini, include_prompt=False)
    assert "private words" not in str(shape)
    assert shape["generationConfig"] == {"responseModalities": ["IMAGE"]}
