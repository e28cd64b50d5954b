"""Leonardo over plain httpx (docs/vendor-facts.md §5): the create/poll/download cycle on a manual
clock, job faults, moderation shapes, Hasura-style errors, /me and the pricing calculator."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from fallback_chain.emulator import Emulator
from fallback_chain.emulator.facts import LEONARDO_DEFAULT_MODEL
from fallback_chain.imaging import InvalidImageError, inspect_image

SDK_BODY = {  # what the official SDK puts on the wire for {"prompt", "num_images": 1} [PROBE]
    "alchemy": True, "height": 768, "modelId": LEONARDO_DEFAULT_MODEL, "num_images": 1,
    "presetStyle": "DYNAMIC", "prompt": "a koala", "width": 1024,
}


def create(leo: httpx.Client, **overrides: Any) -> str:
    response = leo.post("/generations", json={**SDK_BODY, **overrides})
    assert response.status_code == 200, response.text
    job = response.json()["sdGenerationJob"]
    assert isinstance(job["apiCreditCost"], int) and job["apiCreditCost"] > 0
    return str(job["generationId"])


def poll(leo: httpx.Client, job_id: str) -> dict[str, Any]:
    response = leo.get(f"/generations/{job_id}")
    assert response.status_code == 200
    body = response.json()["generations_by_pk"]
    assert isinstance(body, dict)
    return body


def test_generation_moves_from_pending_to_complete(leo: httpx.Client, emu: Emulator,
                                                   clock: Any) -> None:
    emu.set_faults({"leonardo": {"job_delay_s": 2.0, "url_ttl_s": 30}})
    job_id = create(leo, num_images=2, width=832, height=512)
    pending = poll(leo, job_id)
    assert pending["status"] == "PENDING" and pending["generated_images"] == []
    clock.advance(2.0)
    done = poll(leo, job_id)
    assert done["status"] == "COMPLETE" and done["id"] == job_id
    assert (done["imageWidth"], done["imageHeight"], done["modelId"]) == \
        (832, 512, LEONARDO_DEFAULT_MODEL)
    assert "presetStyle" in done and done["generation_elements"] == []
    images = done["generated_images"]
    assert len(images) == 2 and not any(i["nsfw"] for i in images)
    for image in images:
        assert set(image) >= {"id", "url", "nsfw", "likeCount", "motionMP4URL",
                              "generated_image_variation_generics"}
        fetched = leo.get(image["url"])
        assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/jpeg"
        info = inspect_image(fetched.content)
        assert (info.width, info.height, info.mime_type) == (832, 512, "image/jpeg")
    assert poll(leo, job_id)["generated_images"] == images  # stable across polls
    clock.advance(31)
    assert leo.get(images[0]["url"]).status_code == 403
    endpoints = [e.endpoint for e in emu.requests(vendor="leonardo")]
    assert endpoints == ["generate", "poll", "poll", "image", "image", "poll", "image"]
    assert emu.requests(vendor="leonardo")[0].prompt == "a koala"


def test_sdk_defaults_and_default_num_images(leo: httpx.Client, emu: Emulator,
                                             clock: Any) -> None:
    job_id = create(leo, num_images=None, width=None, height=None, modelId=None)
    clock.advance(1)
    done = poll(leo, job_id)
    assert len(done["generated_images"]) == 4  # spec default
    assert (done["imageWidth"], done["imageHeight"]) == (1024, 768)


@pytest.mark.parametrize(("token", "status", "images", "nsfw"), [
    ("job_failed", "FAILED", 0, False),
    ("job_stuck", "PENDING", 0, False),
    ("nsfw", "COMPLETE", 3, True),
    ("policy", "COMPLETE", 3, True),
    ("fewer_images", "COMPLETE", 2, False),
])
def test_job_faults(leo: httpx.Client, emu: Emulator, clock: Any, token: str, status: str,
                    images: int, nsfw: bool) -> None:
    emu.script("leonardo", token)
    job_id = create(leo, num_images=3)
    clock.advance(3600)
    body = poll(leo, job_id)
    assert body["status"] == status
    assert len(body["generated_images"]) == images
    assert all(i["nsfw"] is nsfw for i in body["generated_images"])


def test_expired_and_corrupt_image_urls(leo: httpx.Client, emu: Emulator, clock: Any) -> None:
    emu.script("leonardo", "expired,bad_image", expired_status=404)
    expired_job, corrupt_job = create(leo), create(leo)
    clock.advance(1)
    [expired] = poll(leo, expired_job)["generated_images"]
    gone = leo.get(expired["url"])
    assert gone.status_code == 404
    [corrupt] = poll(leo, corrupt_job)["generated_images"]
    fetched = leo.get(corrupt["url"])
    assert fetched.status_code == 200
    with pytest.raises(InvalidImageError):
        inspect_image(fetched.content)


def test_moderated_prompt_is_a_400(leo: httpx.Client, emu: Emulator) -> None:
    emu.script("leonardo", "moderated")
    response = leo.post("/generations", json=SDK_BODY)
    assert response.status_code == 400
    assert response.json() == {
        "error": "Your prompt was flagged by content moderation and cannot be generated.",
        "path": "$", "code": "content-moderation"}


@pytest.mark.parametrize(("token", "status", "code"), [
    ("429", 429, "rate-limit-exceeded"), ("500", 500, "unexpected"),
    ("503", 503, "unexpected"), ("auth", 401, "invalid-jwt"),
    ("quota", 402, "insufficient-credits"),
])
def test_errors_use_the_hasura_body(leo: httpx.Client, emu: Emulator, token: str, status: int,
                                    code: str) -> None:
    emu.script("leonardo", token)
    response = leo.post("/generations", json=SDK_BODY)
    assert response.status_code == status
    body = response.json()
    assert body["path"] == "$" and body["code"] == code and isinstance(body["error"], str)
    assert response.headers["content-type"] == "application/json"


def test_poll_faults_when_asked_for(leo: httpx.Client, emu: Emulator, clock: Any) -> None:
    emu.script("leonardo", "ok,500", applies_to=["generate", "poll"])
    job_id = create(leo)
    assert leo.get(f"/generations/{job_id}").status_code == 500
    clock.advance(1)
    assert poll(leo, job_id)["status"] == "COMPLETE"


def test_auth(emu: Emulator) -> None:
    transport = emu.httpx_sync_transport()
    with httpx.Client(transport=transport, base_url="http://emulator.test/api/rest/v1") as raw:
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "test-key"}):
            response = raw.get("/me", headers=headers)
            assert response.status_code == 401
            assert response.json()["path"] == "$"


def test_me_pricing_and_unknown_generation(leo: httpx.Client) -> None:
    me = leo.get("/me").json()
    assert isinstance(me["user_details"], list)
    assert me["user_details"][0]["apiConcurrencySlots"] == 10
    priced = leo.post("/pricing-calculator", json={
        "service": "IMAGE_GENERATION",
        "serviceParams": {"IMAGE_GENERATION": {"imageWidth": 1024, "imageHeight": 1024,
                                               "numImages": 4, "alchemyMode": True}}})
    assert priced.json() == {"calculateProductionApiServiceCost": {"cost": 40}}
    job = leo.post("/generations", json={**SDK_BODY, "width": 1024, "height": 1024,
                                         "num_images": 4}).json()["sdGenerationJob"]
    assert job["apiCreditCost"] == 40
    unknown = leo.get("/generations/00000000-0000-4000-8000-000000000000")
    assert unknown.status_code == 200 and unknown.json() == {"generations_by_pk": None}


@pytest.mark.parametrize("overrides", [
    {"prompt": ""}, {"width": 30}, {"height": 1000 + 1}, {"num_images": 9},
    {"num_images": 5, "width": 1024}, {"width": "big"},
])
def test_validation(leo: httpx.Client, overrides: dict[str, Any]) -> None:
    response = leo.post("/generations", json={**SDK_BODY, **overrides})
    assert response.status_code == 400
    assert response.json()["code"] == "validation-failed"
