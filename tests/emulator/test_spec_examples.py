"""The vendors' own OpenAPI specs: their example responses must parse, and the answers our
adapters read must fit the schemas.

* OpenAI: ``specs/openai-openapi-images-excerpt.yaml`` (from ``openai/openai-openapi`` at
  commit f85dbe2, see its first line). Every example response of the ``/images/*`` operations
  (``x-oaiMeta.examples``) validates against the spec's own schemas, is read by the ``openai``
  SDK's types, and by the adapter's reader.
* Leonardo: ``specs/leonardo-openapi-generations-excerpt.json`` (Leonardo's OpenAPI bundle as
  published in ``Leonardo-Interactive/leonardo-python-sdk``; origin in its ``x-origin``). That
  spec carries no examples at all (checked below), so what must parse instead is every 200
  answer of the corpus (``tests/corpus/leonardo``) and of the emulator: each validates against
  the spec's response schema and is read by the adapter's parsers.
"""

from __future__ import annotations

import asyncio
import json
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import openai.types
import pytest
import yaml

from fallback_chain.emulator import Emulator
from fallback_chain.errors import ProviderError
from fallback_chain.outcome import Outcome
from fallback_chain.providers.leonardo.wire import parse_generation, parse_submission
from fallback_chain.providers.openai.wire import read_images, usage_dict

SPECS = Path(__file__).with_name("specs")
OPENAI_SPEC = SPECS / "openai-openapi-images-excerpt.yaml"
LEONARDO_SPEC = SPECS / "leonardo-openapi-generations-excerpt.json"
CORPUS = Path(__file__).parents[1] / "corpus"


def _nullable(node: Any) -> Any:
    """OpenAPI 3.0 ``nullable: true`` as JSON Schema's ``null`` type."""
    if isinstance(node, list):
        return [_nullable(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        if "$ref" in out:
            out = {"anyOf": [{"$ref": out.pop("$ref")}, {"type": "null"}], **out}
    return out


@cache
def _document(path: Path) -> dict[str, Any]:
    text = path.read_text()
    raw = yaml.safe_load(text) if path.suffix == ".yaml" else json.loads(text)
    doc: dict[str, Any] = _nullable(raw)
    return doc


def _errors(path: Path, schema: dict[str, Any], value: Any) -> list[str]:
    full = {**schema, "components": _document(path)["components"]}
    validator = jsonschema.Draft202012Validator(full)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(value)]


# ----------------------------------------------------------------------------------- OpenAI


def _openai_examples() -> list[tuple[str, str, str]]:
    """(operation, title, response text) of every example of the /images/* operations."""
    found = []
    for path, ops in _document(OPENAI_SPEC)["paths"].items():
        for op in ops.values():
            meta = op.get("x-oaiMeta") or {}
            examples = meta.get("examples") or []
            for ex in examples if isinstance(examples, list) else [examples]:
                if isinstance(ex, dict) and isinstance(ex.get("response"), str):
                    found.append((path, str(ex.get("title", "")), ex["response"]))
    return found


OPENAI_EXAMPLES = _openai_examples()


def test_the_openai_spec_has_image_examples() -> None:
    paths = {p for p, _, _ in OPENAI_EXAMPLES}
    assert {"/images/generations", "/images/edits", "/images/variations"} <= paths
    assert len(OPENAI_EXAMPLES) >= 4


@pytest.mark.parametrize(("path", "title", "text"), OPENAI_EXAMPLES,
                         ids=[f"{p}:{t}" for p, t, _ in OPENAI_EXAMPLES])
def test_openai_spec_example_responses_parse(path: str, title: str, text: str) -> None:
    ref = {"$ref": "#/components/schemas/ImagesResponse"}
    if text.lstrip().startswith("event:"):  # a server-sent event stream
        events = [json.loads(line.removeprefix("data:").strip())
                  for line in text.splitlines() if line.startswith("data:")]
        assert events
        family = "ImageEdit" if "edits" in path else "ImageGen"
        for event in events:
            kind = "PartialImage" if event["type"].endswith("partial_image") else "Completed"
            schema = {"$ref": f"#/components/schemas/{family}{kind}Event"}
            errors = _errors(OPENAI_SPEC, schema, event)
            # the spec's stream examples are abbreviated: they leave out properties its own
            # schema requires (created_at, size, quality, background, output_format); nothing
            # else may be wrong with them (the adapter does not stream)
            assert all(e.endswith("is a required property") for e in errors), errors
            assert event["type"].endswith(("partial_image", "completed"))
        return
    body = json.loads(text)
    assert _errors(OPENAI_SPEC, ref, body) == []
    parsed = openai.types.ImagesResponse.model_validate(body)
    assert parsed.data
    if body.get("usage"):
        assert usage_dict(parsed.usage) == body["usage"]
    if parsed.data[0].url:  # url answers: the reader hands every url back for download
        _, urls, _ = asyncio.run(read_images(parsed.data, len(parsed.data)))
        assert [u for _, u in urls] == [d["url"] for d in body["data"]]
    else:  # the spec's "..." is a placeholder, not base64: read as malformed, never as image
        with pytest.raises(ProviderError) as info:
            asyncio.run(read_images(parsed.data, 1))
        assert info.value.outcome is Outcome.MALFORMED_RESPONSE


# --------------------------------------------------------------------------------- Leonardo


def _response_schema(path: str, method: str) -> dict[str, Any]:
    op = _document(LEONARDO_SPEC)["paths"][path][method]
    schema: dict[str, Any] = op["responses"]["200"]["content"]["application/json"]["schema"]
    return schema


def test_the_leonardo_spec_states_its_origin_and_has_no_examples() -> None:
    raw = json.loads(LEONARDO_SPEC.read_text())
    assert "leonardo-python-sdk" in raw["x-origin"]
    text = LEONARDO_SPEC.read_text()
    assert '"example"' not in text and '"examples"' not in text  # nothing to replay from it
    assert {"/generations", "/generations/{id}", "/me"} <= set(raw["paths"])


def _corpus_leonardo_answers() -> list[tuple[str, str, Any]]:
    out = []
    for file in sorted((CORPUS / "leonardo").glob("*.json")):
        case = json.loads(file.read_text())
        steps = case.get("exchanges") or [{"endpoint": case["endpoint"],
                                           "response": case["response"]}]
        for step in steps:
            if step["response"]["status"] == 200 and "body" in step["response"]:
                out.append((file.stem, step["endpoint"], step["response"]["body"]))
    return out


LEONARDO_ANSWERS = _corpus_leonardo_answers()


@pytest.mark.parametrize(("name", "endpoint", "body"), LEONARDO_ANSWERS,
                         ids=[f"{n}:{e}" for n, e, _ in LEONARDO_ANSWERS])
def test_leonardo_corpus_answers_fit_the_spec_and_parse(name: str, endpoint: str,
                                                        body: Any) -> None:
    if endpoint == "poll":
        assert _errors(LEONARDO_SPEC, _response_schema("/generations/{id}", "get"), body) == []
        generation = parse_generation(body)
        assert generation is not None and generation.status
    else:
        assert endpoint == "submit"
        assert _errors(LEONARDO_SPEC, _response_schema("/generations", "post"), body) == []
        assert parse_submission(body).generation_id


def test_leonardo_emulator_answers_fit_the_spec_and_parse() -> None:
    key = "spec-key"
    emu = Emulator(api_keys=key, faults={"leonardo": {"job_delay_s": 0}})
    with httpx.Client(transport=emu.httpx_sync_transport(), base_url="http://emulator.test",
                      headers={"authorization": f"Bearer {key}"}) as client:
        submitted = client.post("/api/rest/v1/generations",
                                json={"prompt": "a lighthouse", "width": 512, "height": 512,
                                      "num_images": 1})
        assert submitted.status_code == 200, submitted.text
        body = submitted.json()
        assert _errors(LEONARDO_SPEC, _response_schema("/generations", "post"), body) == []
        gid = parse_submission(body).generation_id
        polled = client.get(f"/api/rest/v1/generations/{gid}")
        assert polled.status_code == 200, polled.text
        answer = polled.json()
    errors = _errors(LEONARDO_SPEC, _response_schema("/generations/{id}", "get"), answer)
    # the spec's sdVersion enum (2024) lags the API: the service answers values it lacks
    # (Leonardo-Interactive/leonardo-python-sdk#6: "'SDXL_0_9' is not a valid SdVersions");
    # the adapter does not read sdVersion
    assert [e for e in errors if not e.startswith("['generations_by_pk', 'sdVersion']")] == []
    generation = parse_generation(answer)
    assert generation is not None and generation.id == gid
