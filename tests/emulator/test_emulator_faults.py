"""Fault configuration: TOML/JSON loading, scripts, rates, latency, determinism by seed, the
per-model override, and the admin HTTP endpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest

from fallback_chain.emulator import Emulator, FaultConfig, FaultConfigError
from fallback_chain.emulator.faults import FaultEngine, parse_script

ROOT = Path(__file__).resolve().parents[2]
GEN = {"model": "gpt-image-1.5", "prompt": "x", "quality": "low", "size": "1024x1024"}
AUTH = {"authorization": "Bearer test-key"}


def statuses(http2: httpx2.Client, count: int, body: dict[str, Any] = GEN) -> list[int]:
    return [http2.post("/v1/images/generations", json=body, headers=AUTH).status_code
            for _ in range(count)]


def test_script_string_with_repeats() -> None:
    kinds = [f.kind for f in parse_script("429*2, 500 ,ok,reset", "openai")]
    assert kinds == ["429", "429", "500", "ok", "reset"]


@pytest.mark.parametrize(("raw", "fragment"), [
    ({"openai": {"script": "teapot"}}, "unknown fault 'teapot'"),
    ({"openai": {"script": "job_stuck"}}, "unknown fault 'job_stuck'"),
    ({"openai": {"script": "200"}}, "400..599"),
    ({"openai": {"rates": {"429": 0.7, "500": 0.5}}}, "at most 1"),
    ({"openai": {"latency": {"dist": "gamma"}}}, "openai.latency.dist: must be 'fixed'"),
    ({"openai": {"latency": {"dist": "uniform", "mean_ms": 3}}}, "takes"),
    ({"openai": {"retry_after_format": "fortnights"}}, "retry_after_format"),
    ({"openai": {"colour": 1}}, "openai.colour: unknown key; valid keys here: applies_to"),
    ({"anthropic": {}}, "anthropic: unknown top-level key"),
    ({"openai": {"models": {"dall-e-3": {"script": "nsfw"}}}},
     "openai.models.dall-e-3.script: unknown fault 'nsfw'"),
    ({"seed": "x"}, "seed: must be a valid integer"),
    ({"openai": {"applies_to": ["everything"]}}, "applies_to"),
    ({"default": {"script": "moderation_blocked"}}, "[default]"),
])
def test_bad_configurations_are_rejected(raw: dict[str, Any], fragment: str) -> None:
    with pytest.raises(FaultConfigError) as err:
        FaultConfig.load(raw)
    assert fragment in str(err.value)


def test_errors_in_a_file_name_the_file_the_line_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "faults.toml"
    path.write_text('seed = 3\n\n[openai]\nscript = "429"\nretry_after_format = "fortnights"\n')
    with pytest.raises(FaultConfigError) as err:
        FaultConfig.load(path)
    assert str(err.value).startswith(f"{path}:5: openai.retry_after_format: must be 'seconds'")
    path.write_text("[openai\n")
    with pytest.raises(FaultConfigError) as err:
        FaultConfig.load(path)
    assert str(err.value).startswith(f"{path}:1: not valid TOML")


def test_example_file_loads_and_drives_the_emulator() -> None:
    config = FaultConfig.load(ROOT / "examples" / "faults.toml")
    assert config.seed == 1234
    rule = config.rule("openai", "dall-e-3")
    assert [f.kind for f in rule.script] == ["content_policy_violation"]
    assert config.rule("leonardo", None).job_delay_s > 0
    Emulator(config)  # usable as is


def test_toml_text_and_model_override(http2: httpx2.Client, emu: Emulator) -> None:
    emu.set_faults("""
        [default]
        script = "503"
        [openai]
        script = "429,ok"
        [openai.models."dall-e-3"]
        script = "500"
    """)
    assert statuses(http2, 3) == [429, 200, 200]
    dalle = {"model": "dall-e-3", "prompt": "x", "response_format": "b64_json"}
    assert statuses(http2, 2, dalle) == [500, 200]
    gem = http2.post("/v1/models/gemini-2.5-flash-image:generateContent",
                     json={"contents": [{"parts": [{"text": "x"}]}]},
                     headers={"x-goog-api-key": "test-key"})
    assert gem.status_code == 503  # [default] applies to every vendor


def _sequence(seed: int, n: int = 60) -> list[str | None]:
    engine = FaultEngine(FaultConfig({"seed": seed, "openai": {
        "rates": {"429": 0.2, "5xx": 0.2, "policy": 0.1},
        "latency": {"dist": "lognormal", "median_ms": 30, "sigma": 0.8}}}))
    out: list[str | None] = []
    for _ in range(n):
        decision = engine.decide("openai", "gpt-image-1.5", "generate")
        out.append(f"{decision.fault.kind if decision.fault else 'ok'}"
                   f"@{decision.latency_s:.6f}")
    return out


def test_same_seed_same_faults_and_latencies() -> None:
    first = _sequence(7)
    assert first == _sequence(7)
    assert first != _sequence(8)
    kinds = {s.split("@")[0] for s in first}  # type: ignore[union-attr]
    assert {"ok", "429", "policy"} <= kinds and kinds & {"500", "502", "503"}


def test_aliases_draw_concrete_faults() -> None:
    engine = FaultEngine(FaultConfig({"seed": 2, "gemini": {"script": "malformed*40,5xx*40"}}))
    kinds = [engine.decide("gemini", None, "generate").fault for _ in range(80)]
    assert {f.kind for f in kinds[:40] if f} == {"truncated", "html", "bad_base64"}
    assert {f.kind for f in kinds[40:] if f} == {"500", "502", "503"}


def test_the_log_names_the_alias_a_fault_was_drawn_as(http2: httpx2.Client,
                                                       emu: Emulator) -> None:
    emu.script("openai", "5xx,malformed,500,ok")
    statuses(http2, 4)
    logged = [(e.fault, e.drawn) for e in emu.requests()]
    assert [d for _, d in logged] == ["5xx", "malformed", None, None]
    assert logged[0][0] in {"500", "502", "503"} and logged[2:] == [("500", None), (None, None)]
    assert http2.get("/_emulator/log").json()["entries"][0]["drawn"] == "5xx"


def test_rates_are_roughly_right_and_models_draw_independently() -> None:
    engine = FaultEngine(FaultConfig({"seed": 1, "gemini": {"rates": {"429": 0.25}}}))
    hits = sum(engine.decide("gemini", "a", "generate").fault is not None for _ in range(4000))
    assert 850 < hits < 1150
    # interleaving another model does not change model "a"'s sequence
    solo = FaultEngine(FaultConfig({"seed": 1, "gemini": {"rates": {"429": 0.25}}}))
    mixed = FaultEngine(FaultConfig({"seed": 1, "gemini": {"rates": {"429": 0.25}}}))
    a_solo = [solo.decide("gemini", "a", "generate").fault for _ in range(50)]
    a_mixed = []
    for _ in range(50):
        mixed.decide("gemini", "b", "generate")
        a_mixed.append(mixed.decide("gemini", "a", "generate").fault)
    assert a_solo == a_mixed


@pytest.mark.parametrize(("latency", "low", "high"), [
    (25, 0.025, 0.025),
    ({"dist": "uniform", "min_ms": 10, "max_ms": 20}, 0.010, 0.020),
    ({"dist": "normal", "mean_ms": 50, "stddev_ms": 5}, 0.0, 0.2),
    ({"dist": "exponential", "mean_ms": 5}, 0.0, 1.0),
])
def test_latency_distributions(latency: Any, low: float, high: float) -> None:
    engine = FaultEngine(FaultConfig({"openai": {"latency": latency}}))
    samples = [engine.decide("openai", None, "generate").latency_s for _ in range(200)]
    assert all(low <= s <= high for s in samples)


def test_latency_is_applied_through_the_clock(http2: httpx2.Client, emu: Emulator,
                                              clock: Any) -> None:
    emu.set_faults({"openai": {"latency_ms": 1500}})
    before = clock.now()
    assert statuses(http2, 2) == [200, 200]
    assert clock.now() - before == pytest.approx(3.0)


def test_applies_to_meta_and_script_reset(http2: httpx2.Client, emu: Emulator) -> None:
    emu.script("openai", "500")
    assert http2.get("/v1/models", headers=AUTH).status_code == 200  # meta: not by default
    emu.script("openai", "500", applies_to=["meta"])
    assert http2.get("/v1/models", headers=AUTH).status_code == 500
    assert statuses(http2, 1) == [200]
    emu.reset()
    assert http2.get("/v1/models", headers=AUTH).status_code == 500  # script restarted
    assert [e.fault for e in emu.requests()] == ["500"]


# ------------------------------------------------------------------ admin over HTTP


def test_admin_endpoints(http2: httpx2.Client, emu: Emulator) -> None:
    assert http2.get("/_emulator/health").json() == {"ok": True}
    posted = http2.post("/_emulator/faults", content='[openai]\nscript = "429,quota"\n',
                        headers={"content-type": "application/toml"})
    assert posted.status_code == 200 and posted.json()["openai"]["script"] == "429,quota"
    assert statuses(http2, 3) == [429, 429, 200]
    as_json = http2.post("/_emulator/faults", json={"seed": 3, "openai": {"script": ["503"]}})
    assert as_json.status_code == 200 and emu.faults.seed == 3
    assert http2.get("/_emulator/faults").json() == {"seed": 3, "openai": {"script": ["503"]}}
    assert statuses(http2, 1) == [503]
    bad = http2.post("/_emulator/faults", json={"openai": {"script": "teapot"}})
    assert bad.status_code == 400 and "teapot" in bad.json()["error"]
    log = http2.get("/_emulator/log", params={"vendor": "openai"}).json()
    assert log["count"] == 4
    assert [e["status"] for e in log["entries"]] == [429, 429, 200, 503]
    assert log["entries"][0]["fault"] == "429" and log["entries"][2]["fault"] is None
    assert log["entries"][0]["prompt"] == "x" and log["entries"][0]["model"] == "gpt-image-1.5"
    assert set(log["entries"][0]) >= {"seq", "time", "vendor", "endpoint", "method", "path",
                                      "status", "fault", "latency_ms", "prompt", "params"}
    since = log["entries"][1]["seq"]
    assert http2.get("/_emulator/log", params={"since": since}).json()["count"] == 2
    assert http2.post("/_emulator/reset").json() == {"ok": True}
    assert http2.get("/_emulator/log").json()["count"] == 0
    assert len(emu.log) == 0


def test_unknown_routes_are_vendor_shaped(http2: httpx2.Client) -> None:
    openai_404 = http2.post("/v1/images/variations/x", headers=AUTH)
    assert openai_404.status_code == 404
    assert openai_404.json()["error"]["message"].startswith("Invalid URL")
    assert http2.get("/api/rest/v1/nothing").json()["path"] == "$"
    assert http2.get("/v1beta/tunedModels").json()["error"]["status"] == "NOT_FOUND"


def test_per_vendor_keys_and_any_key() -> None:
    emu = Emulator(api_keys={"openai": "o", "gemini": "g", "leonardo": "l"})
    with httpx2.Client(transport=emu.httpx2_sync_transport(),
                       base_url="http://emulator.test") as http2:
        assert http2.get("/v1/models", headers={"authorization": "Bearer o"}).status_code == 200
        assert http2.get("/v1/models", headers={"authorization": "Bearer g"}).status_code == 401
        assert http2.get("/v1/models", headers={"x-goog-api-key": "g"}).status_code == 200
        assert http2.get("/api/rest/v1/me",
                         headers={"authorization": "Bearer l"}).status_code == 200
    anyone = Emulator(api_keys=None)
    with httpx2.Client(transport=anyone.httpx2_sync_transport(),
                       base_url="http://emulator.test") as http2:
        assert http2.get("/v1/models", headers={"authorization": "Bearer x"}).status_code == 200
        assert http2.get("/v1/models").status_code == 401
