"""One record per model (``providers/<vendor>/models.json``): capabilities, lifecycle and prices
in one place, validated by a schema; the capability catalogue and the price catalogue read the
same status and shutdown date."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from fallback_chain import records
from fallback_chain.cost.catalogue import PriceCatalogue
from fallback_chain.providers import catalogue


def test_every_vendor_file_is_valid_and_sits_in_its_own_folder():
    found = records.load()
    assert {"openai", "gemini", "leonardo"} <= set(found)
    for vendor, doc in found.items():
        assert doc.vendor == vendor
        for mid, record in doc.models.items():
            if record.prices is not None:
                assert record.prices.get("source") or record.prices.get("like"), mid


def test_the_two_catalogues_agree_because_they_read_the_same_record():
    prices = PriceCatalogue.builtin()
    shared = 0
    for info in catalogue.models():
        entry = prices.model(info.vendor, info.id)
        if entry is None:
            continue
        shared += 1
        assert (entry.status, entry.shutdown) == (info.status, info.shutdown), info.id
    assert shared >= 21


@pytest.mark.parametrize(("vendor", "model", "status", "shutdown"), [
    # a Vertex AI date (LiteLLM's vertex_ai entry) is not the Gemini API's: none announced
    ("gemini", "gemini-3-pro-image", "active", None),
    ("gemini", "gemini-3.1-flash-image", "active", None),
    # Imagen 3 was gone before the 2026-08-17 Imagen shutdown (LiteLLM 1.100.0: 2025-11-10)
    ("gemini", "imagen-3.0-generate-002", "shut_down", date(2025, 11, 10)),
    ("openai", "gpt-image-1.5", "deprecated", date(2026, 12, 1)),
])
def test_resolved_disagreements(vendor, model, status, shutdown):
    info = catalogue.lookup(vendor, model)
    assert (info.status, info.shutdown) == (status, shutdown)
    entry = PriceCatalogue.builtin().model(vendor, model)
    assert entry is not None and (entry.status, entry.shutdown) == (status, shutdown)


def test_the_leonardo_spec_default_model_is_lightning_xl():
    uuid = "b24e16ff-06e3-43eb-8d33-4416c2d75876"
    info = catalogue.lookup("leonardo", uuid)
    assert info.known and info.family == "leonardo-v1"
    assert PriceCatalogue.builtin().model_key("leonardo", uuid) == "lightning-xl"
    assert catalogue.lookup("leonardo", "lightning-xl").known


RECORD = {"family": "f", "status": "active", "lifecycle_source": "https://example.com/m",
          "prices": {"source": "https://example.com/p", "as_of": "2026-12-01",
                     "per_image": {"*": {"standard": 0.01}}}}


def _vendor(**model: object) -> dict[str, object]:
    return {"vendor": "x", "compiled": "2026-12-01", "families": {"f": {"max_n": 1}},
            "prices": {"source": "s", "as_of": "2026-12-01",
                       "quality_tiers": {"draft": "standard", "standard": "standard",
                                         "final": "standard"}},
            "models": {"x-1": {**RECORD, **model}}}


def test_schema_accepts_a_full_record():
    doc = records.VendorRecords.model_validate(_vendor())
    assert doc.price_document()["models"]["x-1"]["status"] == "active"


@pytest.mark.parametrize(("change", "message"), [
    ({"prices": {**RECORD["prices"], "status": "deprecated"}},  # type: ignore[dict-item]
     "belong to the record"),
    ({"prices": {"as_of": "2026-12-01"}}, "source"),
    ({"status": "deprecated"}, "names its shutdown date"),
    ({"family": "nope"}, "unknown families"),
    ({"replacement": "x-9", "status": "shut_down"}, "is not catalogued"),
    ({"lifecycle_source": None}, "lifecycle_source"),
    ({"shutdown": "soon"}, "shutdown"),
])
def test_schema_rejects(change, message):
    with pytest.raises(ValidationError, match=message):
        records.VendorRecords.model_validate(_vendor(**change))
