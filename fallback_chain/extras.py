"""Optional parts of the install: each feature outside the router names the extra that brings
what it needs, so a missing package fails with the ``pip install`` line that fixes it.

``pip install fallback-chain`` is the router and the adapters; the extras are ``cli``,
``emulator``, ``s3``, ``redis``, ``sim``, ``otel`` and ``all``.
"""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec
from types import ModuleType

#: extra name -> the modules it brings (import names).
EXTRAS: dict[str, tuple[str, ...]] = {
    "cli": ("typer", "rich", "fsspec"),
    "emulator": ("starlette", "uvicorn", "multipart", "httpx2"),
    "s3": ("s3fs",),
    "redis": ("redis",),
    "sim": ("matplotlib",),
    # parents before their sub-packages: find_spec of a dotted name imports the parent
    "otel": ("opentelemetry", "opentelemetry.sdk", "opentelemetry.exporter",
             "opentelemetry.exporter.prometheus", "prometheus_client"),
    "testing": ("pytest", "starlette", "uvicorn", "multipart", "httpx2"),
}


class MissingExtraError(ImportError):
    """A feature needs a package that an optional extra installs."""

    def __init__(self, feature: str, module: str, extra: str) -> None:
        super().__init__(
            f"{feature} needs the {module!r} package, which is not installed: "
            f"pip install 'fallback-chain[{extra}]'", name=module)
        self.feature, self.module, self.extra = feature, module, extra


def require(extra: str, feature: str) -> None:
    """Raise :class:`MissingExtraError` naming ``extra`` unless all its modules are installed
    (found, not imported: a command's ``--help`` stays fast)."""
    for module in EXTRAS[extra]:
        if find_spec(module) is None:
            raise MissingExtraError(feature, module, extra)


def load(module: str, extra: str, feature: str) -> ModuleType:
    """``import module``, or :class:`MissingExtraError` naming ``extra``."""
    try:
        return import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name.split(".")[0] != module.split(".")[0]:
            raise  # the module is there but one of its own dependencies is broken
        raise MissingExtraError(feature, module, extra) from None
