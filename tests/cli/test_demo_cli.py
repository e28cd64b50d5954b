"""``fallback-chain demo``: the main job on emulated providers, no keys; and the pieces the
batch engine reuses."""

from __future__ import annotations

import asyncio
import inspect
import json
from pathlib import Path

from fallback_chain import demo as demo_module
from fallback_chain.cli.demo import demo as demo_command
from fallback_chain.emulator import serve_in_thread


def test_json_run(run, tmp_path):
    doc = run.json("demo", "--count", "5", "--out", "d")
    assert doc["emulated"] is True and doc["emulator"].startswith("http://127.0.0.1:")
    summary = doc["summary"]
    assert (summary["briefs"], summary["delivered"], summary["refused"]) == (5, 4, 1)
    refused = doc["items"][4]
    assert (refused["ok"], refused["error"], refused["provider"]) == (False, "content_policy",
                                                                      "gemini")
    assert any(a["outcome"] == "rate_limited" for i in doc["items"] for a in i["attempts"])
    for item in doc["items"]:
        if not item["ok"]:
            assert "images" not in item
            continue
        [image] = item["images"]
        assert Path(image["path"]).is_file()
        meta = json.loads(Path(item["sidecar"]).read_text())
        assert meta["prompt"] == item["prompt"]
        assert meta["images"][0]["file"] == Path(image["path"]).name
        assert meta["attempts"][-1]["outcome"] == "success"
    assert set(summary["providers"]) <= {"gemini", "leonardo", "openai/gpt-image-2", "openai"}
    assert len(list((tmp_path / "d").glob("*.json"))) == 4


def test_human_run(run):
    out = run("demo", "--count", "5", "--out", "d").stdout
    assert "no real vendor is called" in out
    assert "refused: gemini refused the request" in out
    assert "4 of 5 delivered" in out and "per provider" in out


def test_cli_defaults_match_the_demo():
    params = inspect.signature(demo_command).parameters
    assert params["count"].default == len(demo_module.BRIEFS)
    assert params["seed"].default == demo_module.DEFAULT_SEED
    assert params["out"].default == demo_module.DEFAULT_OUT


def test_the_demo_chain_is_reusable():
    emulator = demo_module.demo_emulator(seed=3, faults={})
    with serve_in_thread(emulator) as url:
        chain = demo_module.build_demo_chain(url)

        async def one():
            async with chain:
                return await chain.agenerate("a kite", size="1024x1024")

        result = asyncio.run(one())
    assert result.provider == "gemini"
    assert [p.name for p in chain.providers] == ["gemini", "leonardo", "openai"]


def test_module_entry_point_keeps_working(tmp_path, capsys):
    assert demo_module.main(["--count", "1", "--out", str(tmp_path / "m"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["briefs"] == 1
