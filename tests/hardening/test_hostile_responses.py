"""Hostile responses: every malformed shape the emulator can produce, driven through each vendor
adapter it applies to (the official SDKs over the emulator's in-process transports), plus the
shapes only a scripted server can produce (Leonardo over ``httpx.MockTransport``, the SDKs over
``httpx2.MockTransport``) and image URLs that point where nothing may be fetched from.

Every case ends in a typed outcome; a success has every image fully decoded by Pillow and a
finite, non-negative cost; for the URL cases, the place the URL points to sees no request (a
recording transport, or a loopback server that counts connections)."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import math
from datetime import UTC, datetime
from typing import Any

import httpx
import httpx2
import pytest
from hostile_helpers import (
    BASE,
    HTML,
    JOB,
    KEY,
    PROMPT,
    CountingServer,
    LeonardoMock,
    LeonardoStub,
    attempt,
    completed,
    endless,
    flipped,
    header_then_garbage,
    jpeg,
    leonardo,
    png,
    png_from_chunks,
    resolving,
    sound,
    submitted,
    truncated,
)

from fallback_chain import ChainResult, ImageRequest
from fallback_chain.clock import FastForwardClock
from fallback_chain.emulator import Emulator
from fallback_chain.emulator.faults import ALIAS_KINDS, VENDOR_KINDS
from fallback_chain.errors import ChainError
from fallback_chain.providers import GeminiProvider, OpenAIProvider
from fallback_chain.providers import download as download_module
from fallback_chain.providers.download import AllowList, is_public_address
from fallback_chain.vtime import VirtualClock, run_virtual

#: A date before the catalogue's shutdown of the legacy models these tests still call on the
#: emulator (dall-e-2/-3 on 2026-05-12, gpt-image-1 on 2026-10-23, gpt-image-1.5 and -1-mini
#: on 2026-12-01): a chain skips a model shut down on its clock's date without calling it.
LEGACY = datetime(2026, 5, 1, tzinfo=UTC).timestamp()

pytestmark = pytest.mark.filterwarnings(
    "ignore::fallback_chain.providers.catalogue.ModelLifecycleWarning")

# ==================================================================== the emulator's faults

#: What each fault token the emulator understands becomes, for every vendor (the default
#: policy's table in the README). Vendor-specific tokens and exceptions are below.
COMMON = {
    "ok": "success", "reset": "connection_error", "hang": "timeout", "cut": "connection_error",
    "truncated": "malformed_response", "html": "malformed_response",
    "malformed": "malformed_response", "rate_limit": "rate_limited",
    "quota": "quota_exhausted", "policy": "content_policy", "auth": "auth_error",
    "permission": "auth_error", "server_error": "server_error", "overloaded": "server_error",
    "bad_gateway": "server_error", "5xx": "server_error",
}
STATUSES = {
    "400": "invalid_request", "401": "auth_error", "403": "auth_error", "404": "not_found",
    "405": "invalid_request", "408": "timeout", "409": "invalid_request",
    "413": "invalid_request", "422": "invalid_request", "429": "rate_limited",
    "451": "invalid_request", "499": "invalid_request", "500": "server_error",
    "501": "server_error", "502": "server_error", "503": "server_error", "504": "server_error",
    "529": "server_error", "599": "server_error",
}
OWN = {
    "openai": {"bad_base64": "malformed_response", "bad_image": "malformed_response",
               "fewer_images": "malformed_response", "moderation_blocked": "content_policy",
               "content_policy_violation": "content_policy",
               "invalid_value": "invalid_request", "unknown_parameter": "invalid_request",
               "model_not_found": "not_found", "credit_balance_exhausted": "quota_exhausted",
               "blank_image": "success", "flagged": "success"},
    "gemini": {"bad_base64": "malformed_response", "fewer_images": "malformed_response",
               "no_image": "malformed_response", "text_only": "malformed_response",
               "blocked_prompt": "content_policy", "image_safety": "content_policy",
               "prohibited_content": "content_policy", "invalid_argument": "invalid_request",
               "not_found": "not_found", "prepaid": "quota_exhausted",
               "402": "quota_exhausted", "499": "connection_error"},  # gRPC CANCELLED
    "leonardo": {"bad_image": "malformed_response", "fewer_images": "malformed_response",
                 "expired": "malformed_response", "job_failed": "server_error",
                 "job_stuck": "timeout", "nsfw": "content_policy", "moderated": "content_policy",
                 "402": "quota_exhausted"},
    # checked through the adapters in tests/providers/{replicate,stability}/
    "replicate": {"bad_image": "malformed_response", "fewer_images": "malformed_response",
                  "expired": "malformed_response", "job_failed": "server_error",
                  "job_stuck": "timeout", "nsfw": "content_policy",
                  "invalid_version": "not_found", "402": "quota_exhausted"},
    "stability": {"bad_image": "malformed_response", "unknown_finish": "malformed_response",
                  "content_filtered": "content_policy", "moderated": "content_policy",
                  "403": "content_policy", "402": "quota_exhausted"},  # 403 is moderation
}
JOBS = {"bad_image": "malformed_response", "fewer_images": "malformed_response",
        "expired": "malformed_response", "job_failed": "server_error", "job_stuck": "timeout",
        "nsfw": "content_policy", "moderated": "content_policy"}
# checked through the adapters in tests/providers/{azure,vertex,fal,bfl}/
OWN["azure"] = {**OWN["openai"], "content_filter": "content_policy",
                "deployment_not_found": "not_found", "resource_blocked": "auth_error"}
OWN["vertex"] = {**OWN["gemini"], "quota_per_day": "quota_exhausted",
                 "precondition": "auth_error"}
OWN["fal"] = {**JOBS, "402": "quota_exhausted"}
OWN["bfl"] = {**JOBS, "task_not_found": "malformed_response", "402": "quota_exhausted"}
MODELS = {"openai": "gpt-image-2", "gemini": "gemini-2.5-flash-image", "leonardo": None}


def expected(vendor: str) -> dict[str, str]:
    return {**COMMON, **STATUSES, **OWN[vendor]}


def test_every_fault_kind_the_emulator_has_is_covered() -> None:
    """A new fault kind in the emulator fails here until this table says what it becomes."""
    for vendor, kinds in VENDOR_KINDS.items():
        missing = (kinds | ALIAS_KINDS) - set(expected(vendor))
        assert not missing, (vendor, missing)


def _provider(vendor: str, emu: Emulator, clock: Any, clients: list[Any], **kw: Any) -> Any:
    if vendor == "leonardo":
        return leonardo(emu.httpx_transport(), clock, **kw)
    if vendor == "gemini":
        return GeminiProvider(MODELS["gemini"], api_key=KEY, base_url=BASE,
                              transport=emu.httpx2_transport())
    sdk = httpx2.AsyncClient(transport=emu.httpx2_transport())
    downloads = httpx.AsyncClient(transport=emu.httpx_transport())
    clients += [sdk, downloads]
    return OpenAIProvider(kw.pop("model", MODELS["openai"]), api_key=KEY,
                          base_url=f"{BASE}/v1", http_client=sdk, download_client=downloads,
                          **kw)


def run_fault(vendor: str, script: list[str], endpoint: str = "generate", n: int = 2,
              **kw: Any) -> tuple[str, ChainResult | None, ChainError | None]:
    """One request with ``script`` applied to ``endpoint``; Leonardo on virtual time (its jobs
    and polls cost nothing), the SDK vendors on the real loop with a short attempt timeout."""
    virtual = vendor == "leonardo"
    clock: Any = VirtualClock() if virtual else FastForwardClock(LEGACY)
    emu = Emulator(api_keys=KEY, clock=clock if virtual else None, faults={vendor: {
        "script": script, "applies_to": [endpoint], "job_delay_s": 2.0, "hang_s": 100}})
    size = "256x256" if kw.get("model") == "dall-e-2" else "512x512"
    request = ImageRequest(prompt=PROMPT, n=n, size=size)

    async def go() -> tuple[ChainResult | None, ChainError | None]:
        clients: list[Any] = []
        try:
            provider = _provider(vendor, emu, clock, clients, **kw)
            # real time for the SDK vendors: short only where the emulator hangs on purpose
            timeout = 30.0 if virtual or "hang" not in script else 0.4
            return await attempt([provider], request, clock=clock, timeout=timeout)
        finally:
            for c in clients:
                await c.aclose()

    result, error = run_virtual(go()) if virtual else asyncio.run(go())
    return sound(result, error, n), result, error


def _cases(vendor: str) -> list[Any]:
    table = expected(vendor)
    return [pytest.param(vendor, kind, table[kind], id=f"{vendor}-{kind}")
            for kind in sorted(table)]


@pytest.mark.parametrize(("vendor", "kind", "outcome"),
                         _cases("leonardo") + _cases("openai") + _cases("gemini"))
def test_every_emulator_fault_is_a_typed_outcome(vendor: str, kind: str, outcome: str) -> None:
    got, result, error = run_fault(vendor, [kind])
    assert got == outcome, (error.attempts if error else result)
    if error is not None and kind != "ok":
        assert isinstance(error, ChainError)


#: Leonardo faults on a *poll*: transient ones are polled through within the one job; job
#: fates are drawn on the submission only; the rest end the attempt.
POLL = {**dict.fromkeys(expected("leonardo"), "success"),
        "auth": "auth_error", "permission": "auth_error", "quota": "quota_exhausted",
        "moderated": "content_policy", "hang": "timeout", "400": "invalid_request",
        "401": "auth_error", "402": "quota_exhausted", "403": "auth_error", "404": "not_found",
        "405": "invalid_request", "409": "invalid_request", "413": "invalid_request",
        "422": "invalid_request", "451": "invalid_request", "499": "invalid_request"}


@pytest.mark.parametrize("kind", sorted(POLL))
def test_leonardo_poll_faults(kind: str) -> None:
    got, _, error = run_fault("leonardo", [kind], "poll")
    assert got == POLL[kind], error and error.attempts


#: A fault on every poll (three in a row): the adapter gives up, with the job's cost recorded.
POLL_PERSISTENT = {"reset": "connection_error", "cut": "connection_error",
                   "truncated": "malformed_response", "html": "malformed_response",
                   "rate_limit": "rate_limited", "server_error": "server_error",
                   "bad_gateway": "server_error", "408": "timeout"}


@pytest.mark.parametrize("kind", sorted(POLL_PERSISTENT))
def test_leonardo_poll_faults_that_persist_end_the_attempt_with_the_cost(kind: str) -> None:
    got, _, error = run_fault("leonardo", [kind] * 3, "poll")
    assert got == POLL_PERSISTENT[kind]
    assert error is not None
    assert error.attempts[-1].cost_source == "reported" and error.attempts[-1].cost_usd > 0


#: Faults on the image downloads (both tries of both images): nothing corrupt is delivered.
DOWNLOAD = {"ok": "success", "reset": "connection_error", "cut": "connection_error",
            "hang": "timeout", "truncated": "malformed_response", "html": "malformed_response",
            "server_error": "server_error", "bad_gateway": "server_error",
            "overloaded": "server_error", "rate_limit": "server_error", "401": "server_error",
            "429": "server_error", "403": "malformed_response", "404": "malformed_response",
            "410": "malformed_response", "500": "server_error"}


@pytest.mark.parametrize("kind", sorted(DOWNLOAD))
def test_leonardo_download_faults(kind: str) -> None:
    got, _, error = run_fault("leonardo", [kind] * 4, "image")
    assert got == DOWNLOAD[kind], error and error.attempts


DALLE_URL = {"ok": "success", "reset": "connection_error", "cut": "connection_error",
             "hang": "timeout", "truncated": "malformed_response", "html": "malformed_response",
             "500": "server_error", "403": "malformed_response", "404": "malformed_response"}


@pytest.mark.parametrize("kind", sorted(DALLE_URL))
def test_dalle_url_download_faults(kind: str) -> None:
    got, _, error = run_fault("openai", [kind] * 2, "image", model="dall-e-2",
                              dalle_response_format="url")
    assert got == DALLE_URL[kind], error and error.attempts


@pytest.mark.parametrize("kind", ["bad_base64", "bad_image", "fewer_images"])
def test_dalle_url_answers_with_broken_images(kind: str) -> None:
    got, _, _ = run_fault("openai", [kind], model="dall-e-2", dalle_response_format="url")
    assert got == "malformed_response"


# ============================================================ Leonardo, shapes on a mock

def run_mock(mock: LeonardoMock, n: int = 2, **kw: Any
             ) -> tuple[str, ChainResult | None, ChainError | None]:
    clock = VirtualClock()
    request = ImageRequest(prompt=PROMPT, n=n, size="512x512")
    result, error = run_virtual(attempt([leonardo(mock, clock, **kw)], request, clock=clock))
    return sound(result, error, n), result, error


def _status(status: int, body: bytes | str = b"", ctype: str = "application/json"
            ) -> httpx.Response:
    return httpx.Response(status, content=body, headers={"content-type": ctype})


def image_reply(data: bytes, **headers: str) -> httpx.Response:
    return httpx.Response(200, content=data, headers={"content-type": "image/png", **headers})


def _redirect(to: str) -> httpx.Response:
    return httpx.Response(302, headers={"location": to})


SUBMISSIONS = {
    "id-not-a-string": {"sdGenerationJob": {"generationId": 123}},
    "job-not-an-object": {"sdGenerationJob": "job"},
    "id-path-traversal": {"sdGenerationJob": {"generationId": "../../me"}},
    "id-too-long": {"sdGenerationJob": {"generationId": "a" * 200}},
    "empty-object": {},
    "a-list": _status(200, "[]"),
    "null": _status(200, "null"),
    "html": _status(200, HTML, "text/html"),
    "html-as-json": _status(200, HTML),
    "truncated-json": _status(200, json.dumps(submitted())[:25]),
    "not-utf8": _status(200, b"\xff\xfe\x00{\x00}"),
    "empty-body": _status(200),
}


@pytest.mark.parametrize("name", sorted(SUBMISSIONS))
def test_leonardo_unusable_submission_answers(name: str) -> None:
    mock = LeonardoMock(submit=SUBMISSIONS[name])  # type: ignore[arg-type]
    got, _, error = run_mock(mock)
    assert got == "malformed_response"
    assert error is not None and error.attempts[-1].provider_code in (
        "no_generation_id", "html_body", "invalid_json")
    assert not [r for r in mock.seen if r.method == "GET"]  # no job to poll, nothing fetched


def _images(*items: Any) -> dict[str, Any]:
    return {"generations_by_pk": {"id": JOB, "status": "COMPLETE", "generated_images":
                                  list(items)}}


GOOD = {"url": f"{BASE}/img/0.png", "nsfw": False}
POLLS = {
    "by-pk-is-a-list": ({"generations_by_pk": []}, "bad_generation"),
    "status-not-a-string": ({"generations_by_pk": {"id": JOB, "status": 5}}, "bad_generation"),
    "images-not-a-list": (_images() | {"generations_by_pk": {"id": JOB, "status": "COMPLETE",
                                                             "generated_images": "x"}},
                          "bad_generation"),
    "url-not-a-string": (_images({"url": 5}, GOOD), "bad_generation"),
    "image-not-an-object": (_images("x", GOOD), "bad_generation"),
    "nsfw-as-string-false": (_images({**GOOD, "nsfw": "false"}, GOOD), "bad_generation"),
    "nsfw-as-string-true": (_images({**GOOD, "nsfw": "true"}, GOOD), "bad_generation"),
    "unknown-status": ({"generations_by_pk": {"id": JOB, "status": "EXPLODED"}}, "EXPLODED"),
    "complete-without-images": (_images(), "fewer_images"),
    "another-jobs-answer": (completed([f"{BASE}/img/0.png"] * 2, job="someone-elses-job"),
                            "wrong_generation"),
    "unknown-job": ({"generations_by_pk": None}, "generation_not_found"),
    "no-by-pk": ({"generations": []}, "bad_generation"),
    "html": (_status(200, HTML, "text/html"), "html_body"),
    "truncated-json": (_status(200, json.dumps(completed([]))[:30]), "invalid_json"),
}


@pytest.mark.parametrize("name", sorted(POLLS))
def test_leonardo_unusable_poll_answers(name: str) -> None:
    body, code = POLLS[name]
    mock = LeonardoMock(poll=body)  # type: ignore[arg-type]
    got, _, error = run_mock(mock)
    assert got == "malformed_response"
    assert error is not None
    last = error.attempts[-1]
    assert last.provider_code == code
    assert last.cost_source == "reported" and last.cost_usd > 0  # the job was billed
    assert mock.downloads() == []


def test_an_answer_the_adapter_fails_to_handle_is_typed_and_keeps_the_cost(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a poll answer makes the parsing code raise, once the job exists the attempt is
    ``malformed_response`` with the credits it billed, not a bare exception the router would
    have to guess a cost for."""
    from fallback_chain.providers.leonardo import adapter as leonardo_module

    def explode(_data: Any) -> Any:
        raise RecursionError("a pathological answer")

    monkeypatch.setattr(leonardo_module, "parse_generation", explode)
    got, _, error = run_mock(LeonardoMock())
    assert got == "malformed_response"
    assert error is not None
    last = error.attempts[-1]
    assert last.provider_code == "unreadable" and "RecursionError" in (last.message or "")
    assert last.cost_source == "reported" and last.cost_usd > 0


def test_leonardo_lower_case_status_is_read() -> None:
    mock = LeonardoMock(poll={"generations_by_pk": {**completed(
        [f"{BASE}/img/0.png", f"{BASE}/img/1.png"])["generations_by_pk"], "status": "complete"}})
    assert run_mock(mock)[0] == "success"


def test_a_hostile_list_of_urls_fetches_only_what_was_asked() -> None:
    mock = LeonardoMock(urls=[f"{BASE}/img/{i}.png" for i in range(500)])
    got, result, _ = run_mock(mock, n=2)
    assert got == "success" and result is not None and len(result.images) == 2
    assert len(mock.downloads()) == 2


@pytest.mark.parametrize("cost", [
    {"cost": {"amount": "NaN", "unit": "DOLLARS"}},
    {"cost": {"amount": "-5", "unit": "DOLLARS"}},
    {"cost": {"amount": "1e400", "unit": "DOLLARS"}},
    {"cost": {"amount": "Infinity", "unit": "CREDITS"}},
    {"apiCreditCost": -10},
    {"apiCreditCost": "lots"},
    {"apiCreditCost": [1]},
], ids=str)
def test_leonardo_nonsense_costs_are_never_recorded(cost: dict[str, Any]) -> None:
    job = {"generationId": JOB, **cost}
    job.setdefault("apiCreditCost", None)
    got, result, _ = run_mock(LeonardoMock(submit={"sdGenerationJob": job}))
    assert got == "success" and result is not None
    [a] = result.attempts
    assert a.cost_source == "estimated"  # what Leonardo said is unusable: the estimate stands
    assert math.isfinite(a.cost_usd) and a.cost_usd > 0


# --------------------------------------------------------------------- the image bytes

PNG = png(64, 64)
BROKEN_IMAGES = {
    "truncated-png": image_reply(truncated(PNG)),
    "truncated-jpeg": image_reply(truncated(jpeg()), **{"content-type": "image/jpeg"}),
    "png-with-a-corrupted-byte": image_reply(flipped(PNG)),
    "png-header-then-garbage": image_reply(header_then_garbage(PNG)),
    "html-200": _status(200, HTML, "text/html"),
    "json-200": _status(200, b'{"error": "not an image"}'),
    "empty-200": image_reply(b""),
    "text-200": _status(200, b"GIF89a but not really", "image/gif"),
}


@pytest.mark.parametrize("name", sorted(BROKEN_IMAGES))
def test_leonardo_broken_image_bytes_are_never_a_success(name: str) -> None:
    mock = LeonardoMock(files={f"{BASE}/img/0.png": BROKEN_IMAGES[name]})
    got, _, error = run_mock(mock)
    assert got == "malformed_response", error and error.attempts
    assert error is not None and "not an image" in (error.attempts[-1].message or "")


@pytest.mark.parametrize("name", ["png-idat-not-zlib", "png-idat-too-short",
                                  "png-claims-100000x100000"])
def test_structurally_valid_but_undecodable_png_is_never_a_success(name: str) -> None:
    """Every chunk CRC is right, so a header-and-CRC check passes; the pixels do not decode
    (or would need 30 GB). Defect for the lead: ``imaging.inspect_image`` must inflate IDAT
    and check its length (and cap the dimensions); until then this fails."""
    import zlib

    data = {"png-idat-not-zlib": png_from_chunks(64, 64, b"garbage" * 20),
            "png-idat-too-short": png_from_chunks(64, 64, zlib.compress(b"\x00" * 100)),
            "png-claims-100000x100000": png_from_chunks(100_000, 100_000,
                                                        zlib.compress(b"\x00" * 100))}[name]
    mock = LeonardoMock(files={f"{BASE}/img/0.png": image_reply(data)})
    got, _, _ = run_mock(mock)
    assert got == "malformed_response"


def test_a_corrupt_byte_inside_jpeg_scan_data_is_beyond_any_check() -> None:
    """The limit of verification, written down: JPEG has no checksum, so a flipped byte in the
    entropy-coded data still decodes (to slightly wrong pixels). PNG's CRCs catch the same."""
    from hostile_helpers import decodes

    assert decodes(flipped(jpeg(256, 256))) == (256, 256)
    with pytest.raises(OSError, match="data stream"):
        decodes(flipped(PNG))


# ----------------------------------------------------------------- where images come from

FORBIDDEN = [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "https://169.254.169.254/latest/meta-data/",
    "https://10.0.0.5/img.png",
    "https://192.168.1.1/img.png",
    "http://127.0.0.1:9/img.png",            # loopback, not the configured origin
    "https://127.0.0.1/img.png",
    "https://[::1]/img.png",
    "https://[::ffff:127.0.0.1]/img.png",
    "https://localhost/img.png",
    "http://cdn.leonardo.ai/img.png",        # plain http to the real CDN
    "https://images.example.com/img.png",    # https, but not on the allow-list
    "https://cdn.leonardo.ai.evil.example/img.png",
    "http://emulator.test:8080/img.png",     # the configured host on another port
    "https://cdn.leonardo.ai:99999/img.png",  # unparsable port
    "https://user:pw@cdn.leonardo.ai/img.png",
    "https://evil.example\\@cdn.leonardo.ai/img.png",
    "https://cdn.leonardo.ai\t/img.png",
    "file:///etc/passwd",
    "ftp://cdn.leonardo.ai/img.png",
    "gopher://127.0.0.1:6379/_INFO",
    "data:image/png;base64,iVBORw0KGgo=",
    "//cdn.leonardo.ai/img.png",
    "",
]


@pytest.mark.parametrize("url", FORBIDDEN)
def test_image_urls_that_point_where_nothing_may_be_fetched(url: str) -> None:
    mock = LeonardoMock(urls=[f"{BASE}/img/0.png", url])
    got, _, error = run_mock(mock)
    assert got == "malformed_response"
    assert error is not None
    last = error.attempts[-1]
    assert last.provider_code == "url_not_allowed", last.message
    assert last.cost_source == "reported"  # the job was billed before its URLs were seen
    assert mock.downloads() == []  # refused before anything at all was fetched


@pytest.mark.parametrize("target", [
    "http://169.254.169.254/latest/meta-data/",
    "http://127.0.0.1:9/img.png",
    "https://[::1]/img.png",
    "https://10.1.2.3/img.png",
    "file:///etc/passwd",
    "https://images.example.com/img.png",
])
def test_a_redirect_to_a_forbidden_place_is_not_followed(target: str) -> None:
    start = f"{BASE}/img/0.png"
    mock = LeonardoMock(files={start: _redirect(target)})
    got, _, error = run_mock(mock)
    assert got == "malformed_response"
    assert error is not None and error.attempts[-1].provider_code == "url_not_allowed"
    assert target not in mock.downloads() and mock.downloads().count(start) >= 1
    assert all(httpx.URL(u).host == "emulator.test" for u in mock.downloads())


def test_a_redirect_loop_ends() -> None:
    a, b = f"{BASE}/img/0.png", f"{BASE}/img/a.png"
    mock = LeonardoMock(files={a: _redirect(b), b: _redirect(a)})
    got, _, error = run_mock(mock)
    assert got == "malformed_response"
    assert error is not None and "redirects" in (error.attempts[-1].message or "")
    assert len(mock.downloads()) <= 2 * (download_module.MAX_REDIRECTS + 1)


def test_an_allowed_cdn_url_is_fetched() -> None:
    """The control for the refusals above: the vendor's CDN over https is fetched."""
    cdn = "https://cdn.leonardo.ai/users/abc/generations/def/img.png"
    mock = LeonardoMock(urls=[cdn, f"{BASE}/img/1.png"], files={cdn: png(64, 64)})
    got, _, _ = run_mock(mock)
    assert got == "success"
    assert cdn in mock.downloads()
    cdn_requests = [r for r in mock.seen if r.url.host == "cdn.leonardo.ai"]
    assert all("authorization" not in r.headers for r in cdn_requests)  # never the API key


# ---------------------------------------------------------------------- oversized bodies

def test_a_declared_oversized_download_is_refused_before_reading(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download_module, "MAX_IMAGE_BYTES", 1 << 20)
    pulled = [0]
    body = endless(64 << 10, 60 << 20, pulled)
    mock = LeonardoMock(files={f"{BASE}/img/0.png": httpx.Response(
        200, content=body, headers={"content-length": str(60 << 20)})})
    got, _, error = run_mock(mock)
    assert got == "malformed_response"
    assert error is not None and "limit" in (error.attempts[-1].message or "")
    assert pulled[0] <= 64 << 10  # not a byte of the body beyond the first chunk


def test_a_streamed_oversized_download_stops_at_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    """60 MB generated on demand, no Content-Length: reading stops just past the (patched)
    1 MiB cap instead of holding 60 MB."""
    monkeypatch.setattr(download_module, "MAX_IMAGE_BYTES", 1 << 20)
    pulled = [0]
    mock = LeonardoMock(files={f"{BASE}/img/0.png": httpx.Response(
        200, content=endless(64 << 10, 60 << 20, pulled))})
    got, _, error = run_mock(mock)
    assert got == "malformed_response"
    assert error is not None and "limit" in (error.attempts[-1].message or "")
    assert (1 << 20) < pulled[0] <= (1 << 20) + 2 * (64 << 10)


def test_a_gzip_bomb_is_capped_on_the_decoded_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download_module, "MAX_IMAGE_BYTES", 1 << 20)
    bomb = gzip.compress(b"\x89PNG\r\n\x1a\n" + bytes(16 << 20), compresslevel=1)
    assert len(bomb) < 100_000
    mock = LeonardoMock(files={f"{BASE}/img/0.png": httpx.Response(
        200, content=bomb, headers={"content-encoding": "gzip", "content-type": "image/png"})})
    got, _, error = run_mock(mock)
    assert got == "malformed_response"
    assert error is not None and "limit" in (error.attempts[-1].message or "")


@pytest.mark.parametrize("where", ["submit", "poll"])
def test_an_oversized_api_answer_is_never_read_whole(monkeypatch: pytest.MonkeyPatch,
                                                     where: str) -> None:
    """A 2xx JSON answer of 60 MB (generated on demand): reading stops past the 8 MiB cap."""
    from fallback_chain.providers.leonardo import adapter as leonardo_module

    monkeypatch.setattr(leonardo_module, "MAX_API_BYTES", 1 << 20)
    pulls: list[list[int]] = []

    def huge(_request: httpx.Request) -> httpx.Response:
        pulls.append([0])
        return httpx.Response(200, content=endless(64 << 10, 60 << 20, pulls[-1]),
                              headers={"content-type": "application/json"})

    mock = LeonardoMock(**{where: huge})  # type: ignore[arg-type]
    got, _, error = run_mock(mock)
    assert got == "malformed_response"
    assert error is not None and error.attempts[-1].provider_code == "oversized"
    assert pulls and all(p[0] <= (1 << 20) + 2 * (64 << 10) for p in pulls)


def test_an_oversized_error_answer_keeps_its_status(monkeypatch: pytest.MonkeyPatch) -> None:
    from fallback_chain.providers.leonardo import adapter as leonardo_module

    monkeypatch.setattr(leonardo_module, "MAX_API_BYTES", 1 << 20)
    pulled = [0]
    mock = LeonardoMock(submit=httpx.Response(503, content=endless(64 << 10, 60 << 20, pulled),
                                              headers={"content-type": "text/html"}))
    got, _, error = run_mock(mock)
    assert got == "server_error"
    assert error is not None and error.attempts[-1].status_code == 503
    assert pulled[0] <= (1 << 20) + 2 * (64 << 10)


def test_the_providers_own_cap_applies() -> None:
    got, _, error = run_mock(LeonardoMock(), max_download_bytes=100)
    assert got == "malformed_response"
    assert error is not None and "limit" in (error.attempts[-1].message or "")


# =================================================== the real network: nothing is contacted

@pytest.fixture
def counting() -> Any:
    servers = {"v4": CountingServer("127.0.0.1"), "v6": CountingServer("::1")}
    yield servers
    for s in servers.values():
        s.close()


def run_stub(image_urls: list[str]) -> tuple[str, ChainError | None, LeonardoStub]:
    """A request through a LeonardoProvider on the real network (no transport given: the
    guarded one), against a loopback Leonardo whose job's images are ``image_urls``."""
    from fallback_chain.providers.leonardo.adapter import LeonardoProvider

    stub = LeonardoStub(image_urls)
    try:
        provider = LeonardoProvider(api_key=KEY, base_url=stub.url, poll_initial_s=0.01,
                                    download_timeout_s=5, download_retries=0)
        request = ImageRequest(prompt=PROMPT, n=len(image_urls) or 1, size="512x512")
        result, error = asyncio.run(attempt([provider], request, clock=FastForwardClock(LEGACY),
                                            timeout=10))
        return sound(result, error, request.n), error, stub
    finally:
        stub.close()


def test_the_real_network_round_trip_still_works() -> None:
    """The control: the guarded transport still reaches the configured origin (loopback)."""
    from fallback_chain.providers.leonardo.adapter import LeonardoProvider

    stub = LeonardoStub()
    try:
        stub.image_urls = [f"{stub.url}/img.png", f"{stub.url}/img.png"]
        provider = LeonardoProvider(api_key=KEY, base_url=stub.url, poll_initial_s=0.01)
        result, error = asyncio.run(attempt(
            [provider], ImageRequest(prompt=PROMPT, n=2, size="512x512"),
            clock=FastForwardClock(LEGACY), timeout=10))
        assert sound(result, error, 2) == "success"
        assert stub.paths.count("/img.png") == 2
    finally:
        stub.close()


@pytest.mark.parametrize("where", ["v4-http", "v4-https", "v6-https", "v6-http"])
def test_loopback_urls_other_than_the_origin_are_never_contacted(counting: Any,
                                                                 where: str) -> None:
    family, scheme = where.split("-")
    server = counting[family]
    host = "127.0.0.1" if family == "v4" else "[::1]"
    got, error, _ = run_stub([f"{scheme}://{host}:{server.port}/img.png"])
    assert got == "malformed_response"
    assert error is not None and error.attempts[-1].provider_code == "url_not_allowed"
    assert server.hits == 0


@pytest.mark.parametrize("address", ["127.0.0.1", "0.0.0.0", "::1", "::ffff:127.0.0.1"])
def test_an_allowed_host_name_resolving_to_a_private_address_is_never_contacted(
        counting: Any, monkeypatch: pytest.MonkeyPatch, address: str) -> None:
    """``*.leonardo.ai`` is allowed; a hijacked DNS answer points it at this machine."""
    server = counting["v6" if address == "::1" else "v4"]
    url = f"https://images.leonardo.ai:{server.port}/img.png"
    with resolving(monkeypatch, {"images.leonardo.ai": address}):
        got, error, _ = run_stub([url])
        assert got == "malformed_response"
        assert error is not None
        last = error.attempts[-1]
        assert last.provider_code == "url_not_allowed" and "non-public" in (last.message or "")
        assert server.hits == 0
        # the control: an unguarded client under the same DNS answer does connect there
        with pytest.raises(httpx.HTTPError):
            asyncio.run(_plain_get(url))
        assert server.hits == 1


async def _plain_get(url: str) -> None:
    async with httpx.AsyncClient(verify=False) as client:
        await client.get(url, timeout=2)


@pytest.mark.parametrize("to", ["http://127.0.0.1:{v4}/secret", "https://[::1]:{v6}/secret",
                                "https://images.leonardo.ai:{v4}/secret",
                                "http://169.254.169.254/latest/meta-data/"])
def test_a_redirect_to_a_private_address_is_never_followed(
        counting: Any, monkeypatch: pytest.MonkeyPatch, to: str) -> None:
    target = to.format(v4=counting["v4"].port, v6=counting["v6"].port)
    stub = LeonardoStub()
    stub.image_urls = [f"{stub.url}/redirect?to={target}"]
    from fallback_chain.providers.leonardo.adapter import LeonardoProvider

    try:
        with resolving(monkeypatch, {"images.leonardo.ai": "127.0.0.1"}):
            provider = LeonardoProvider(api_key=KEY, base_url=stub.url, poll_initial_s=0.01,
                                        download_retries=0)
            result, error = asyncio.run(attempt(
                [provider], ImageRequest(prompt=PROMPT, size="512x512"),
                clock=FastForwardClock(LEGACY), timeout=10))
        assert sound(result, error, 1) == "malformed_response"
        assert error is not None and error.attempts[-1].provider_code == "url_not_allowed"
        assert any(p.startswith("/redirect") for p in stub.paths)  # the first hop was taken
    finally:
        stub.close()
    assert counting["v4"].hits == counting["v6"].hits == 0


def test_dalle_urls_on_an_allowed_host_resolving_to_a_private_address(
        counting: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect for the lead (``providers/openai.py``, its own download client is a plain
    ``httpx.AsyncClient``): a DALL-E ``url`` on the allowed ``*.blob.core.windows.net`` whose
    DNS answer is this machine is fetched from it. Fix: build that client on
    ``providers.download.guarded_transport(self._allow)`` as the Leonardo adapter does."""
    server = counting["v4"]
    url = f"https://images.blob.core.windows.net:{server.port}/img.png"
    api = httpx2.MockTransport(lambda _r: httpx2.Response(200, json={
        "created": 1, "data": [{"url": url}]}))
    provider = OpenAIProvider("dall-e-2", api_key=KEY, base_url=f"{BASE}/v1",
                              dalle_response_format="url",
                              http_client=httpx2.AsyncClient(transport=api))
    with resolving(monkeypatch, {"images.blob.core.windows.net": "127.0.0.1"}):
        result, error = asyncio.run(attempt(
            [provider], ImageRequest(prompt=PROMPT, size="256x256"), clock=FastForwardClock(LEGACY),
            timeout=10))
    assert server.hits == 0
    assert sound(result, error, 1) == "malformed_response"


@pytest.mark.parametrize(("address", "public"), [
    ("8.8.8.8", True), ("2606:4700:4700::1111", True), ("127.0.0.1", False),
    ("10.0.0.1", False), ("172.16.5.4", False), ("192.168.0.1", False),
    ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False), ("::1", False),
    ("::", False), ("fe80::1%eth0", False), ("fc00::1", False), ("::ffff:10.0.0.1", False),
    ("::ffff:8.8.8.8", True), ("224.0.0.1", False), ("255.255.255.255", False),
    ("not-an-ip", False),
])
def test_what_counts_as_a_public_address(address: str, public: bool) -> None:
    assert is_public_address(address) is public


def test_allow_list_never_raises() -> None:
    allow = AllowList.of(["cdn.leonardo.ai", "*.leonardo.ai"], [BASE, "http://[::1"])
    for url in [*FORBIDDEN, "https://[::1", "http://[zz]/", "https://%zz/", "\x00", "a" * 10_000]:
        assert allow.refuse(url) is not None


# ====================================== the SDK vendors: wrong types behind a 200 (httpx2)

B64 = base64.b64encode(png(64, 64)).decode()


def _sdk_transport(body: Any) -> httpx2.MockTransport:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx2.MockTransport(lambda _r: httpx2.Response(
        200, content=raw, headers={"content-type": "application/json"}))


OPENAI_BODIES = {
    "data-not-a-list": {"data": "x"},
    "data-null": {"data": None},
    "b64-not-a-string": {"data": [{"b64_json": 123}]},
    "b64-empty": {"data": [{"b64_json": ""}]},
    "items-not-objects": {"data": [1]},
    "error-in-a-200": {"error": {"message": "boom"}},
    "a-list": [],
    "a-number": 12,
    "null": None,
    "b64-of-html": {"data": [{"b64_json": base64.b64encode(HTML).decode()}]},
    "b64-of-truncated-png": {"data": [{"b64_json": base64.b64encode(truncated(PNG)).decode()}]},
    "url-to-metadata": {"data": [{"url": "http://169.254.169.254/latest/meta-data/"}]},
    "revised-prompt-not-a-string": {"data": [{"b64_json": B64, "revised_prompt": 5}]},
    "usage-not-an-object": {"data": [{"b64_json": B64}], "usage": "x"},
}
GEMINI_BODIES = {
    "candidates-not-a-list": {"candidates": "x"},
    "parts-not-a-list": {"candidates": [{"content": {"parts": "x"}}]},
    "inline-data-not-a-string": {"candidates": [{"content": {"parts": [
        {"inlineData": {"data": 5}}]}}]},
    "mime-not-a-string": {"candidates": [{"content": {"parts": [
        {"inlineData": {"data": B64, "mimeType": 7}}]}}]},
    "finish-reason-a-number": {"candidates": [{"finishReason": 5}]},
    "block-reason-a-number": {"promptFeedback": {"blockReason": 5}},
    "text-a-number": {"candidates": [{"content": {"parts": [{"text": 5}]}}]},
    "inline-html": {"candidates": [{"content": {"parts": [{"inlineData": {
        "data": base64.b64encode(HTML).decode(), "mimeType": "image/png"}}]}}]},
    "a-list": [],
    "a-number": 12,
    "null": None,
}


async def _sdk_attempt(vendor: str, body: Any) -> tuple[ChainResult | None, ChainError | None]:
    if vendor == "openai":
        http = httpx2.AsyncClient(transport=_sdk_transport(body))
        provider: Any = OpenAIProvider("gpt-image-2", api_key=KEY, base_url=f"{BASE}/v1",
                                       http_client=http)
    else:
        http = None
        provider = GeminiProvider("gemini-2.5-flash-image", api_key=KEY, base_url=BASE,
                                  transport=_sdk_transport(body))
    try:
        return await attempt([provider], ImageRequest(prompt=PROMPT, size="1024x1024"),
                             clock=FastForwardClock(LEGACY), timeout=5)
    finally:
        if http is not None:
            await http.aclose()


@pytest.mark.parametrize(("vendor", "name"), [("openai", k) for k in sorted(OPENAI_BODIES)]
                         + [("gemini", k) for k in sorted(GEMINI_BODIES)])
def test_sdk_vendors_wrong_types_are_typed_outcomes(vendor: str, name: str,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    body = (OPENAI_BODIES if vendor == "openai" else GEMINI_BODIES)[name]
    result, error = asyncio.run(_sdk_attempt(vendor, body))
    got = sound(result, error, 1)
    if name in ("revised-prompt-not-a-string", "usage-not-an-object"):
        assert got == "success"  # the image is fine; the extras are dropped
    else:
        assert got == "malformed_response", error and error.attempts


@pytest.mark.parametrize(("vendor", "usage"), [
    ("openai", {"input_tokens": 3, "output_tokens": -5000}),
    ("openai", {"input_tokens": 1e308, "output_tokens": 1e308}),
    ("gemini", {"promptTokenCount": 3, "candidatesTokenCount": -100}),
])
def test_reported_usage_never_makes_a_negative_or_infinite_cost(vendor: str,
                                                                 usage: dict[str, Any]) -> None:
    """A usage block with negative or absurd token counts would make a negative or infinite
    "reported" cost; ``settle_cost`` drops it, so it never reaches the attempt, the ledger or
    the budgets (Leonardo's credits likewise: see
    ``test_leonardo_nonsense_costs_are_never_recorded``)."""
    if vendor == "openai":
        body: Any = {"data": [{"b64_json": B64}], "usage": usage}
    else:
        body = {"candidates": [{"content": {"parts": [{"inlineData": {
            "data": B64, "mimeType": "image/png"}}]}, "finishReason": "STOP"}],
            "usageMetadata": usage}
    result, error = asyncio.run(_sdk_attempt(vendor, body))
    assert sound(result, error, 1) == "success" and result is not None
    assert all(math.isfinite(a.cost_usd) and a.cost_usd >= 0 for a in result.attempts)
