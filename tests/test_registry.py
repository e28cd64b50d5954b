"""The vendor registry: the built-in adapters come from the entry-point group
``fallback_chain.providers`` like any third-party adapter, each declares its vendor data on its
class, and an adapter installed from another package joins every part of the library (config,
compare, batch pricing, the catalogue, prices) without a change to this repository."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from fallback_chain import registry
from fallback_chain.config.vendors import RESERVED_OPTIONS, VENDORS
from fallback_chain.errors import ConfigurationError
from fallback_chain.providers import catalogue

BUILT_IN = {"azure", "fake", "gemini", "leonardo", "openai", "vertex"}


def test_entry_points_list_the_built_in_vendors_and_the_registry_is_built_from_them():
    names = {ep.name for ep in entry_points(group="fallback_chain.providers")}
    assert names >= BUILT_IN
    assert set(registry.names()) == names
    assert set(VENDORS) == names


@pytest.mark.parametrize("vendor", sorted(BUILT_IN))
def test_each_adapter_declares_its_vendor_data_and_it_matches_its_constructor(vendor):
    cls = registry.get(vendor)
    assert cls.vendor == vendor
    params = inspect.signature(cls).parameters
    assert params[cls.model_param].default == cls.default_model
    signature_options = sorted(n for n, p in params.items() if n not in RESERVED_OPTIONS
                               and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
    assert sorted(cls.config_options) == signature_options
    assert ("api_key" in params) is cls.needs_key
    assert all(v.isupper() for v in cls.env_vars) and bool(cls.env_vars) is cls.needs_key


#: What an adapter needs besides a key (Azure: its resource endpoint).
NEEDS = {"azure": {"base_url": "https://res.openai.azure.com"}}


@pytest.mark.parametrize(("vendor", "model", "name", "key"), [
    ("openai", "gpt-image-2", None, "openai/gpt-image-2"),
    ("openai", "gpt-image-2", "mine", "mine"),
    ("gemini", "gemini-3.1-flash-image", None, "gemini"),
    ("leonardo", "b24e16ff-06e3-43eb-8d33-4416c2d75876", "leo", "leo"),
    ("azure", "gpt-image-1.5", None, "azure/gpt-image-1.5"),
    ("vertex", "gemini-3-pro-image", None, "vertex"),
])
def test_provider_key_is_the_key_of_the_built_adapter(vendor, model, name, key):
    cls = registry.get(vendor)
    assert cls.provider_key(model, name) == key
    kwargs = {cls.model_param: model, "api_key": "k-0123456789", **NEEDS.get(vendor, {})}
    if name:
        kwargs["name"] = name
    assert cls(**kwargs).key == key


def test_unknown_vendor():
    with pytest.raises(ConfigurationError, match=r"unknown vendor .acme.*openai"):
        registry.get("acme")
    info = catalogue.lookup("acme", "acme-1")  # never a KeyError
    assert (info.known, info.status) == (False, "unknown")
    assert "acme" not in VENDORS


def test_loading_the_registry_imports_no_vendor_sdk():
    code = ("import sys; from fallback_chain import registry; registry.classes(); "
            "heavy = [m for m in ('openai', 'google.genai', 'httpx2', 'starlette') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


ACME = '''
from typing import ClassVar
from fallback_chain.provider import Capabilities, Provider, ProviderReply


class AcmeProvider(Provider):
    vendor = "acme"
    env_vars = ("ACME_API_KEY",)
    default_model = "acme-1"
    config_options = ("steps",)
    emulator_api = "acme_images.emulated:AcmeAPI"

    def __init__(self, model: str = default_model, api_key: str | None = None,
                 base_url: str | None = None, *, name: str = "acme", steps: int = 4) -> None:
        from fallback_chain.providers.base import resolve_api_key
        from fallback_chain.providers.catalogue import lookup

        self.name, self.model, self.steps = name, model, steps
        self.capabilities = lookup("acme", model).capabilities
        self._key = resolve_api_key(api_key, self.env_vars, name)

    async def generate(self, request, *, timeout):
        raise NotImplementedError
'''

RECORDS = {
    "vendor": "acme", "compiled": "2026-12-01", "default_family": "acme",
    "families": {"acme": {"sizes": ["1024x1024"], "max_n": 2}},
    "prices": {"source": "https://acme.example/pricing", "as_of": "2026-12-01",
               "default_model": "acme-1",
               "quality_tiers": {"draft": "std", "standard": "std", "final": "std"}},
    "models": {"acme-1": {"family": "acme", "status": "active",
                          "lifecycle_source": "https://acme.example/models",
                          "prices": {"source": "https://acme.example/pricing",
                                     "as_of": "2026-12-01",
                                     "per_image": {"*": {"std": 0.02}}}}},
}

CHECKS = '''
import asyncio
from fallback_chain import registry
from fallback_chain.batch.pricing import chain_steps
from fallback_chain.compare.specs import build_vendor_provider, parse_specs
from fallback_chain.config.schema import ProviderConfig
from fallback_chain.cost.catalogue import PriceCatalogue
from fallback_chain.cost.estimate import estimate
from fallback_chain.providers import catalogue

assert "acme" in registry.names(), registry.names()
spec = ProviderConfig(vendor="acme", options={"steps": 8})
assert (spec.model_id, spec.key) == ("acme-1", "acme")
(item,) = parse_specs("acme:acme-1")
provider = build_vendor_provider(item, api_key="acme-key-0123456789")
assert provider.capabilities.max_n == 2
info = catalogue.lookup("acme", "acme-1")
assert info.known and info.status == "active"
assert estimate("acme", "acme-1", size=(1024, 1024)) == 0.02
assert "acme" in PriceCatalogue.builtin().vendors()

class Chain:
    providers = [provider]
assert [(s.vendor, s.model) for s in chain_steps(Chain())] == [("acme", "acme-1")]

import httpx
from fallback_chain.emulator import Emulator

emu = Emulator(faults={"acme": {"rates": {"server_error": 0.0}}}, api_keys=None)
assert "acme" in emu.apis and emu.acme.fault_kinds == {"steps_exceeded"}
async def ping():
    async with httpx.AsyncClient(transport=emu.httpx_transport(),
                                 base_url="http://emu.test") as client:
        return (await client.get("/acme/v1/ping")).json()
assert asyncio.run(ping()) == {"vendor": "acme"}
print("ok")
'''

EMULATED = '''
from starlette.responses import JSONResponse
from starlette.routing import Route
from fallback_chain.emulator.common import VendorAPI


class AcmeAPI(VendorAPI):
    vendor = "acme"
    fault_kinds = frozenset({"steps_exceeded"})

    def routes(self):
        return [Route("/acme/v1/ping", self.ping, methods=["GET"])]

    async def ping(self, request):
        return JSONResponse({"vendor": self.vendor})
'''


def test_a_third_party_adapter_joins_through_its_own_entry_point(tmp_path: Path):
    """A package outside this repository (its own folder, its own dist-info with the entry
    point, its own models.json and emulated API) is picked up by config, compare, the
    catalogue, prices, batch pricing and the emulator."""
    package = tmp_path / "acme_images"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent(ACME))
    (package / "models.json").write_text(json.dumps(RECORDS))
    (package / "emulated.py").write_text(textwrap.dedent(EMULATED))
    dist = tmp_path / "acme_images-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-images\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[fallback_chain.providers]\nacme = acme_images:AcmeProvider\n")
    out = subprocess.run([sys.executable, "-c", CHECKS], capture_output=True, text=True,
                         cwd=tmp_path, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"


def test_register_at_run_time():
    from fallback_chain.providers import FakeProvider

    class Other(FakeProvider):
        vendor = "other"

    try:
        registry.register(Other)
        assert "other" in registry.names() and registry.get("other") is Other
        assert VENDORS["other"].needs_key is False
    finally:
        registry.unregister("other")
    assert "other" not in registry.names()
