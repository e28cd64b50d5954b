"""Every name a package exports lazily is what its docs say it is, never a submodule that
happens to share its name (``from fallback_chain.cost import estimate_batch, estimate`` once
bound ``estimate`` to the module ``cost/estimate.py``)."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import types

import pytest

LAZY_PACKAGES = ["fallback_chain", "fallback_chain.batch", "fallback_chain.cassette",
                 "fallback_chain.compare", "fallback_chain.config", "fallback_chain.cost",
                 "fallback_chain.emulator", "fallback_chain.simulate", "fallback_chain.state",
                 "fallback_chain.testing"]


def test_the_documented_import_gives_the_function_in_a_fresh_interpreter():
    code = ("from fallback_chain.cost import estimate_batch, estimate\n"
            "import types\n"
            "assert not isinstance(estimate, types.ModuleType), estimate\n"
            "assert estimate('openai', 'gpt-image-2', size='1024x1024') > 0\n"
            "assert callable(estimate_batch)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("name", LAZY_PACKAGES)
def test_no_export_is_shadowed_by_a_submodule(name):
    package = importlib.import_module(name)
    for sub in pkgutil.iter_modules(package.__path__):
        if sub.name in package.__all__:
            importlib.import_module(f"{name}.{sub.name}")
    for export in package.__all__:
        value = getattr(package, export)
        assert not isinstance(value, types.ModuleType), f"{name}.{export} is a module"
