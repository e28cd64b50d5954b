"""``fallback-chain providers`` and ``generate --emulated`` with the Azure OpenAI and Vertex AI
adapters, named by vendor id in a config file."""

from __future__ import annotations

import datetime

import pytest

from fallback_chain.cost.estimate import estimate


def test_providers_lists_azure_and_vertex_with_prices_and_lifecycle(run):
    azure = {m["model"]: m for m in run.json("providers", "--vendor", "azure")["models"]}
    assert {"gpt-image-2", "gpt-image-1.5", "gpt-image-1", "gpt-image-1-mini",
            "dall-e-3"} <= set(azure)
    assert azure["gpt-image-2"]["status"] == "preview"
    assert (azure["dall-e-3"]["status"], azure["dall-e-3"]["shutdown"]) == (
        "shut_down", "2026-03-04")
    assert azure["gpt-image-1.5"]["price"]["usd_per_image"] == pytest.approx(
        estimate("azure", "gpt-image-1.5", size=(1024, 1024), quality="standard"))
    vertex = {m["model"]: m for m in run.json("providers", "--vendor", "vertex")["models"]}
    assert {"gemini-2.5-flash-image", "gemini-3.1-flash-image", "gemini-3-pro-image"} <= set(
        vertex)
    flash = vertex["gemini-2.5-flash-image"]
    # the listing shows the status on today's date: deprecated until its announced shutdown
    status = "shut_down" if datetime.date.today().isoformat() >= "2027-03-15" else "deprecated"
    assert (flash["status"], flash["shutdown"], flash["replacement"]) == (
        status, "2027-03-15", "gemini-3.1-flash-image")
    assert flash["price"]["usd_per_image"] == pytest.approx(0.039)
    assert "16:9" in vertex["gemini-3-pro-image"]["capabilities"]["aspect_ratios"]


def test_generate_emulated_with_azure_and_vertex_in_the_config(run, write):
    write('''
        default_chain = "main"
        [chains.main]
        [[chains.main.providers]]
        vendor = "azure"
        model = "gpt-image-1.5"
        options = { deployment = "images-prod" }
        [[chains.main.providers]]
        vendor = "vertex"
        options = { project = "acme-images", location = "us-central1" }
        [chains.vertex_only]
        [[chains.vertex_only.providers]]
        vendor = "vertex"
        model = "gemini-3-pro-image"
        ''')
    assert "no API key" in run("generate", "a fox", code=2).stderr
    doc = run.json("generate", "a fox", "--emulated", "--out", "o")
    assert doc["ok"] and doc["emulated"] and doc["provider"] == "azure"
    assert [a["outcome"] for a in doc["attempts"]] == ["success"]
    doc = run.json("generate", "a fox", "--emulated", "--chain", "vertex_only", "--out", "o",
                   "--size", "16:9")
    assert doc["ok"] and doc["provider"] == "vertex" and len(doc["images"]) == 1
