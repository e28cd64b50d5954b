"""Model catalogue lookups and lifecycle warnings; the image download allow-list."""

from __future__ import annotations

import warnings
from datetime import date

import pytest

from fallback_chain.providers import catalogue
from fallback_chain.providers.download import AllowList


@pytest.mark.parametrize(("vendor", "model", "family", "status", "known"), [
    ("openai", "gpt-image-1", "gpt-image-1", "shut_down", True),
    ("openai", "dall-e-3", "dall-e-3", "shut_down", True),
    ("openai", "gpt-image-2-2026-04-21", "gpt-image-2", "active", True),
    ("openai", "gpt-image-2.5-sunburst-2026-09-08", "gpt-image-2", "active", True),
    ("openai", "gpt-image-9", "gpt-image-2", "unknown", False),
    ("gemini", "gemini-2.5-flash-image", "gemini-2.5-image", "deprecated", True),
    ("gemini", "gemini-99-ultra-image", "gemini-3-image", "unknown", False),
    ("leonardo", "de7d3faf-762f-48e0-b3b7-9d0ac3a3fcf3", "leonardo-v1", "unknown", False),
])
def test_lookup(vendor, model, family, status, known):
    info = catalogue.lookup(vendor, model)
    assert (info.id, info.family, info.status, info.known) == (model, family, status, known)


def test_capabilities_come_from_the_data_file():
    dalle3 = catalogue.lookup("openai", "dall-e-3").capabilities
    assert (dalle3.max_n, dalle3.rewrites_prompt, dalle3.edits) == (1, True, False)
    assert (1792, 1024) in dalle3.sizes
    gpt2 = catalogue.lookup("openai", "gpt-image-2").capabilities
    assert (gpt2.size_multiple, gpt2.max_side, gpt2.max_ratio) == (16, 3840, 3.0)
    gemini = catalogue.lookup("gemini", "gemini-3-pro-image").capabilities
    assert (8, 1) in gemini.aspect_ratios


def test_every_replacement_is_itself_catalogued_and_active():
    active = {(m.vendor, m.id) for m in catalogue.models() if m.status == "active"}
    for m in catalogue.models():
        if m.replacement:
            assert (m.vendor, m.replacement) in active, m


def test_retired_model_warns_once_naming_the_replacement():
    info = catalogue.lookup("openai", "dall-e-2")
    catalogue._warned.discard(("openai", "dall-e-2"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        msg = catalogue.warn_if_retired(info, today=date(2026, 11, 21))
        catalogue.warn_if_retired(info, today=date(2026, 11, 21))
    assert msg is not None
    assert "shut down on 2026-05-12" in msg
    assert "'gpt-image-2'" in msg
    assert len([w for w in caught if issubclass(w.category, catalogue.ModelLifecycleWarning)]) == 1


def test_deprecated_model_warns_only_when_shutdown_is_near():
    info = catalogue.lookup("openai", "gpt-image-1.5")
    assert catalogue.warn_if_retired(info, today=date(2026, 6, 1)) is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        near = catalogue.warn_if_retired(info, today=date(2026, 11, 21))
    assert near is not None
    assert "shuts down on 2026-12-01" in near
    assert catalogue.warn_if_retired(catalogue.lookup("openai", "gpt-image-2")) is None


ALLOW = AllowList.of(["cdn.leonardo.ai", "*.leonardo.ai"], ["http://127.0.0.1:8700/api/rest/v1"])


@pytest.mark.parametrize(("url", "allowed"), [
    ("https://cdn.leonardo.ai/users/x/img.jpg", True),
    ("https://images.leonardo.ai/a.png", True),
    ("http://127.0.0.1:8700/files/a.png", True),  # the emulator's own origin
    ("http://cdn.leonardo.ai/a.png", False),  # plain http outside the configured origin
    ("https://evil.example.com/a.png", False),
    ("https://leonardo.ai.evil.com/a.png", False),
    ("https://169.254.169.254/latest/meta-data", False),  # cloud metadata address
    ("https://10.0.0.5/a.png", False),
    ("http://127.0.0.1:9999/a.png", False),  # loopback, but not the configured origin
    ("file:///etc/passwd", False),
    ("ftp://cdn.leonardo.ai/a.png", False),
])
def test_allow_list(url, allowed):
    assert (ALLOW.refuse(url) is None) is allowed


def test_fetch_all_raises_a_provider_error_not_an_exception_group():
    import asyncio

    import httpx

    from fallback_chain.errors import ProviderError
    from fallback_chain.imaging import placeholder_image
    from fallback_chain.providers.download import fetch_all

    png = placeholder_image(32, 32)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("gone.png"):
            return httpx.Response(404)
        return httpx.Response(200, content=png)

    allow = AllowList.of(["cdn.example.com"])

    async def go(urls):
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await fetch_all(client, urls, allow, timeout=5)

    ok = asyncio.run(go(["https://cdn.example.com/a.png", "https://cdn.example.com/b.png"]))
    assert [i.width for i in ok] == [32, 32]
    with pytest.raises(ProviderError) as info:
        asyncio.run(go(["https://cdn.example.com/a.png", "https://cdn.example.com/gone.png"]))
    assert info.value.outcome.value == "malformed_response"
    assert info.value.status_code == 404
