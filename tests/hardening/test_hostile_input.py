"""Hostile input: every bad request, config and input file gets a clear error naming what is
wrong, and nothing is sent to any provider.

"Nothing sent" is proved each time: a ``FakeProvider``'s call count stays 0 and the emulator
behind the real Gemini, Leonardo and OpenAI adapters logs no request (in-process for the Python
API, a loopback server for the command line). Inputs go in through the Python API
(``ImageRequest``, ``Chain.agenerate``), the batch reader and the CLI (``generate``, ``batch``).

Decisions written down here: a prompt over 32,000 characters (the longest any supported vendor
takes) is refused outright; a shorter one over a provider's own documented limit (Leonardo
1,500, DALL-E 3 4,000) makes the chain skip that provider before sending. A mask without alpha
is converted by the OpenAI adapter (documented in ``providers/openai_masks.py``) and refused, as
a recorded skip, by the providers that take no mask. An unknown *model* id in a config is a
warning naming the line and the closest known id (the catalogue cannot know tomorrow's models);
an unknown *vendor* is an error.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import time
import tracemalloc
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from hostile_helpers import (
    BASE,
    HTML,
    KEY,
    PROMPT,
    header_then_garbage,
    no_alpha_mask,
    png,
    truncated,
)
from PIL import Image
from typer.testing import CliRunner

from fallback_chain import Chain, ImageRequest, Outcome
from fallback_chain.batch.index import BatchIndex
from fallback_chain.batch.items import BatchItem, RowError
from fallback_chain.batch.items_stream import iter_items
from fallback_chain.batch.reader import InputError, open_input, read_raw_rows
from fallback_chain.config import ConfigError, load_config
from fallback_chain.emulator import Emulator
from fallback_chain.errors import ChainExhaustedError, RequestValidationError
from fallback_chain.providers import FakeProvider, GeminiProvider, LeonardoProvider, OpenAIProvider

pytestmark = pytest.mark.filterwarnings(
    "ignore::fallback_chain.providers.catalogue.ModelLifecycleWarning")

# ============================================================== requests (the Python API)

FileMaker = Callable[[Path], Any]


def _file(name: str, data: bytes) -> FileMaker:
    def make(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(data)
        return path
    return make


def _sparse(name: str, size: int) -> FileMaker:
    """A file of ``size`` bytes that takes no disk and no time to make."""
    def make(tmp: Path) -> Path:
        path = tmp / name
        with path.open("wb") as fh:
            fh.truncate(size)
        return path
    return make


PNG = png(64, 64)
BIG = 60 * 2**20  # a 60 MB upload

#: (fields, the field the error must name, a fragment of its message). A value that is a
#: ``FileMaker`` is replaced by the path of a file it makes in ``tmp_path``.
BAD_REQUESTS: dict[str, tuple[dict[str, Any], str, str]] = {
    "prompt-empty": ({"prompt": ""}, "prompt", "empty"),
    "prompt-whitespace": ({"prompt": " \n\t\u3000 "}, "prompt", "empty"),
    "prompt-100k-chars": ({"prompt": "a lighthouse " * 7_693}, "prompt", "100,009 characters"),
    "prompt-lone-surrogate": ({"prompt": "caf\udce9 au lait"}, "prompt", "surrogate"),
    "prompt-none": ({"prompt": None}, "prompt", "must be text"),
    "prompt-nul": ({"prompt": "a \x00fox"}, "prompt", "control character U+0000"),
    "prompt-escape-sequence": ({"prompt": "a fox\x1b[2J"}, "prompt", "U+001B"),
    "prompt-a-number": ({"prompt": 42}, "prompt", "must be text"),
    "negative-prompt-40k": ({"negative_prompt": "x" * 40_000}, "negative_prompt", "40,000"),
    "negative-prompt-surrogate": ({"negative_prompt": "\ud800"}, "negative_prompt",
                                  "surrogate"),
    "size-0x0": ({"size": "0x0"}, "size", "out of range"),
    "size-negative": ({"size": "-5x10"}, "size", "not a size"),
    "size-words": ({"size": "abc"}, "size", "not a size"),
    "size-half": ({"size": "1024x"}, "size", "not a size"),
    "size-huge": ({"size": "99999x99999"}, "size", "out of range"),
    "size-one-pixel-too-wide": ({"size": "8193x1024"}, "size", "out of range"),
    "size-ratio-0-1": ({"size": "0:1"}, "size", "aspect ratio 0:1"),
    "size-ratio-1-0": ({"size": "1:0"}, "size", "aspect ratio 1:0"),
    "size-ratio-9-1": ({"size": "9:1"}, "size", "aspect ratio 9:1"),
    "size-empty": ({"size": ""}, "size", "not a size"),
    "size-three-sides": ({"size": "1024x1024x3"}, "size", "not a size"),
    "size-float": ({"size": "1e3x1e3"}, "size", "not a size"),
    "size-nul": ({"size": "1024x1024\x00"}, "size", "not a size"),
    "size-int": ({"size": 1024}, "size", "must be text"),
    "n-0": ({"n": 0}, "n", "between 1 and 10 (got 0)"),
    "n-11": ({"n": 11}, "n", "between 1 and 10 (got 11)"),
    "n-negative": ({"n": -1}, "n", "between 1 and 10"),
    "n-huge": ({"n": 10**30}, "n", "between 1 and 10"),
    "n-true": ({"n": True}, "n", "not True"),
    "n-fraction": ({"n": 2.5}, "n", "must be a whole number (got 2.5)"),
    "n-words": ({"n": "many"}, "n", "must be a whole number"),
    "seed-negative": ({"seed": -1}, "seed", "between 0 and"),
    "seed-2-32": ({"seed": 2**32}, "seed", "between 0 and"),
    "seed-bool": ({"seed": False}, "seed", "not False"),
    "quality": ({"quality": "ultra"}, "quality", "one of draft, standard, final (got 'ultra')"),
    "format": ({"output_format": "gif"}, "output_format", "got 'gif'"),
    "background": ({"background": "pink"}, "background", "got 'pink'"),
    "size-match": ({"size_match": "close"}, "size_match", "got 'close'"),
    "transparent-jpeg": ({"background": "transparent", "output_format": "jpeg"}, "",
                         "transparent"),
    "unknown-field": ({"colour": "red"}, "colour", "not a field"),
    "metadata-not-json": ({"metadata": {"when": object()}}, "metadata", "JSON-serialisable"),
    "idempotency-key-empty": ({"idempotency_key": ""}, "idempotency_key", "printable"),
    "idempotency-key-newline": ({"idempotency_key": "a\nb"}, "idempotency_key", "printable"),
    "edit-not-an-image": ({"images": [b"hello, I am text"]}, "images", "not a usable image"),
    "edit-truncated-png": ({"images": [truncated(PNG)]}, "images", "truncated"),
    "edit-png-header-then-garbage": ({"images": [header_then_garbage(PNG)]}, "images",
                                     "not a usable image"),
    "edit-html": ({"images": [HTML]}, "images", "not a PNG, JPEG, WebP or GIF"),
    "edit-empty-bytes": ({"images": [b""]}, "images", "not a usable image"),
    "edit-text-file": ({"images": [_file("notes.txt", b"just words\n")]}, "images",
                       "not a usable image"),
    "edit-truncated-file": ({"images": [_file("half.png", truncated(PNG))]}, "images",
                            "truncated"),
    "edit-missing-file": ({"images": ["/nonexistent/photo.png"]}, "images", "is not a file"),
    "edit-a-directory": ({"images": [lambda tmp: tmp]}, "images", "is not a file"),
    "edit-60MB-file": ({"images": [_sparse("huge.png", BIG)]}, "images", "larger than 50 MB"),
    "edit-60MB-bytes": ({"images": [b"\x89PNG\r\n\x1a\n" + bytes(BIG)]}, "images",
                        "60.0 MB; the limit is 50 MB"),
    "edit-17-images": ({"images": [PNG] * 17}, "images", "at most 16"),
    "mask-wrong-size": ({"images": [png(64, 64)], "mask": png(32, 32, alpha=True)}, "",
                        "mask is 32x32 but the image is 64x64"),
    "mask-no-alpha-wrong-size": ({"images": [png(64, 64)], "mask": no_alpha_mask(48, 48)}, "",
                                 "same size"),
    "mask-without-image": ({"mask": png(64, 64, alpha=True)}, "", "needs at least one image"),
    "mask-not-an-image": ({"images": [PNG], "mask": b"GIF89a"}, "mask", "not a usable image"),
    "mask-truncated": ({"images": [PNG], "mask": truncated(png(64, 64, alpha=True))}, "mask",
                       "truncated"),
    "mask-60MB-file": ({"images": [PNG], "mask": _sparse("mask.png", BIG)}, "mask",
                       "larger than 50 MB"),
}


def _fields(spec: dict[str, Any], tmp: Path) -> dict[str, Any]:
    def resolve(value: Any) -> Any:
        if callable(value):
            return value(tmp)
        if isinstance(value, list):
            return [resolve(v) for v in value]
        return value
    fields = {k: resolve(v) for k, v in spec.items()}
    fields.setdefault("prompt", PROMPT)
    return fields


@pytest.fixture(scope="module")
def emulated() -> tuple[Emulator, list[Any]]:
    """The three real adapters wired to one in-process emulator (never reached here)."""
    emu = Emulator(api_keys=KEY)
    sdk = httpx2.AsyncClient(transport=emu.httpx2_transport())
    downloads = httpx.AsyncClient(transport=emu.httpx_transport())
    providers = [
        GeminiProvider("gemini-2.5-flash-image", api_key=KEY, base_url=BASE,
                       transport=emu.httpx2_transport()),
        LeonardoProvider(api_key=KEY, base_url=BASE, transport=emu.httpx_transport()),
        OpenAIProvider("gpt-image-2", api_key=KEY, base_url=f"{BASE}/v1", http_client=sdk,
                       download_client=downloads),
    ]
    return emu, providers


@pytest.mark.parametrize("name", sorted(BAD_REQUESTS))
def test_bad_request_is_refused_naming_the_field_and_nothing_is_sent(
        name: str, tmp_path: Path, emulated: tuple[Emulator, list[Any]]) -> None:
    spec, field, fragment = BAD_REQUESTS[name]
    fields = _fields(spec, tmp_path)
    with pytest.raises(RequestValidationError) as caught:
        ImageRequest(**fields)
    _names(caught.value, field, fragment)

    emu, providers = emulated
    emu.log.clear()
    fake = FakeProvider("fake")
    chain = Chain([*providers, fake], log=False)
    with pytest.raises(RequestValidationError) as caught:
        asyncio.run(chain.agenerate(**fields))
    _names(caught.value, field, fragment)
    assert caught.value.attempts == []
    assert fake.calls == 0
    assert len(emu.log) == 0


def _names(error: RequestValidationError, field: str, fragment: str) -> None:
    """The error names the field (``""``: the request as a whole) and says what is wrong."""
    assert field in [f for f, _ in error.errors], error.errors
    assert fragment in str(error), str(error)
    assert len(str(error)) < 600  # a 100k prompt or 60 MB of bytes is never echoed back


def test_the_blocking_form_refuses_the_same_way() -> None:
    fake = FakeProvider("fake")
    chain = Chain([fake], log=False)
    try:
        with pytest.raises(RequestValidationError, match="n: must be between 1 and 10"):
            chain.generate(PROMPT, n=11)
    finally:
        chain.close()
    assert fake.calls == 0


# ------------------------------------------------ limits that belong to one provider only

def test_a_prompt_over_a_providers_documented_limit_skips_it_before_sending(
        emulated: tuple[Emulator, list[Any]]) -> None:
    """5,000 characters: under the 32,000 any vendor takes, over Leonardo's 1,500 and DALL-E
    3's 4,000. Those two are skipped (a recorded reason, nothing sent); nobody is left."""
    emu, _ = emulated
    emu.log.clear()
    leo = LeonardoProvider(api_key=KEY, base_url=BASE, transport=emu.httpx_transport())
    dalle = OpenAIProvider("dall-e-3", api_key=KEY, base_url=f"{BASE}/v1",
                           http_client=httpx2.AsyncClient(transport=emu.httpx2_transport()))
    prompt = "a lighthouse at dusk, " * 228  # 5,016 characters
    with pytest.raises(ChainExhaustedError) as caught:
        asyncio.run(Chain([leo, dalle], log=False).agenerate(prompt))
    attempts = caught.value.attempts
    assert [a.outcome for a in attempts] == [Outcome.SKIPPED] * 2
    assert "5,016 characters; this provider accepts 1,500" in (attempts[0].message or "")
    assert "accepts 4,000" in (attempts[1].message or "")
    assert len(emu.log) == 0


def test_a_long_prompt_goes_whole_to_the_provider_that_takes_it(
        emulated: tuple[Emulator, list[Any]]) -> None:
    emu, providers = emulated
    emu.log.clear()
    leo = LeonardoProvider(api_key=KEY, base_url=BASE, transport=emu.httpx_transport())
    gpt = providers[2]
    prompt = "a lighthouse at dusk, " * 228
    result = asyncio.run(Chain([leo, gpt], log=False).agenerate(prompt, size="1024x1024"))
    assert [a.outcome for a in result.attempts] == [Outcome.SKIPPED, Outcome.SUCCESS]
    [sent] = emu.requests(vendor="openai")
    assert sent.prompt == prompt  # nothing truncated, nothing mangled
    assert emu.log.count(vendor="leonardo") == 0


# --------------------------------------------------------------------------------- masks

def test_a_mask_without_alpha_is_refused_by_providers_that_take_no_mask(
        emulated: tuple[Emulator, list[Any]]) -> None:
    emu, providers = emulated
    emu.log.clear()
    gemini, leo, _ = providers
    fields = {"images": [png(64, 64)], "mask": no_alpha_mask(64, 64)}
    with pytest.raises(ChainExhaustedError) as caught:
        asyncio.run(Chain([gemini, leo], log=False).agenerate(PROMPT, **fields))
    messages = [a.message or "" for a in caught.value.attempts]
    assert [a.outcome for a in caught.value.attempts] == [Outcome.SKIPPED] * 2
    assert "takes no mask" in messages[0] and "does not edit images" in messages[1]
    assert len(emu.log) == 0


def test_a_mask_without_alpha_reaches_openai_converted_to_an_alpha_png(
        emulated: tuple[Emulator, list[Any]]) -> None:
    """Documented conversion (white = edit): what is sent is a PNG mask with an alpha channel
    the size of the image, never the grey original."""
    emu, _ = emulated
    emu.log.clear()
    seen: list[bytes] = []
    original = emu.httpx2_transport()

    class Spy(httpx2.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            seen.append(await request.aread())
            return await original.handle_async_request(request)

    gpt = OpenAIProvider("gpt-image-2", api_key=KEY, base_url=f"{BASE}/v1",
                         http_client=httpx2.AsyncClient(transport=Spy()))
    grey = no_alpha_mask(64, 64)
    result = asyncio.run(Chain([gpt], log=False).agenerate(
        PROMPT, images=[png(64, 64)], mask=grey))
    assert result.attempts[-1].outcome is Outcome.SUCCESS
    [entry] = emu.requests(vendor="openai")
    [mask_part] = (entry.params or {})["mask"]
    assert mask_part["content_type"] == "image/png"
    body = seen[0]
    start = body.index(b"\x89PNG", body.index(b'name="mask"'))
    with Image.open(io.BytesIO(body[start:])) as sent:
        assert sent.mode in ("RGBA", "LA") and sent.size == (64, 64)
    assert grey not in body


# =============================================================================== config

CONFIGS: dict[str, tuple[str, int | None, str]] = {
    "bad-toml": ('[chains.main\nproviders = []\n', 1, "not valid TOML"),
    "unknown-vendor": ('[chains.main]\n[[chains.main.providers]]\nvendor = "midjourney"\n', 3,
                       "unknown vendor 'midjourney'"),
    "vendor-typo": ('[chains.main]\n[[chains.main.providers]]\nvendor = "gemni"\n', 3,
                    "did you mean 'gemini'"),
    "deadline-a-string": ('[chains.main]\ndeadline_s = "soon"\n'
                          '[[chains.main.providers]]\nvendor = "fake"\n', 2,
                          "chains.main.deadline_s: Input should be a valid number"),
    "providers-a-string": ('[chains.main]\nproviders = "openai"\n', 2,
                           "chains.main.providers: Input should be a valid list"),
    "no-providers": ('[chains.main]\nproviders = []\n', 2, "at least 1 item"),
    "retries-a-list": ('[chains.main]\npolicy = { retries = [1] }\n'
                       '[[chains.main.providers]]\nvendor = "fake"\n', 2, "retries"),
    "unknown-key": ('[chains.main]\ndeadine_s = 5\n[[chains.main.providers]]\nvendor = "fake"\n',
                    2, "did you mean 'deadline_s'"),
    "unknown-top-level-key": ('chain = 1\n[chains.main]\n[[chains.main.providers]]\n'
                              'vendor = "fake"\n', 1, "unknown key"),
    "unknown-option": ('[chains.main]\n[[chains.main.providers]]\nvendor = "leonardo"\n'
                       'options = { pol_initial_s = 1 }\n', 4, "unknown option 'pol_initial_s'"),
    "option-wrong-type": ('[chains.main]\n[[chains.main.providers]]\nvendor = "leonardo"\n'
                          'options = { poll_initial_s = "fast" }\n', 4,
                          "options.poll_initial_s: option 'poll_initial_s' must be float "
                          "(got 'fast')"),
    "option-string-for-list": ('[chains.main]\n[[chains.main.providers]]\nvendor = "leonardo"\n'
                               'options = { cdn_hosts = "cdn.leonardo.ai" }\n', 4,
                               "option 'cdn_hosts' must be Sequence[str]"),
    "option-bad-choice": ('[chains.main]\n[[chains.main.providers]]\nvendor = "openai"\n'
                          'options = { dalle_response_format = 5 }\n', 4,
                          "dalle_response_format"),
    "nan-deadline": ('[chains.main]\ndeadline_s = nan\n[[chains.main.providers]]\n'
                     'vendor = "fake"\n', 2, "chains.main.deadline_s: must be a number, not nan"),
    "nan-in-policy": ('[chains.main]\n[[chains.main.providers]]\nvendor = "fake"\n'
                      'policy = { attempt_timeout_s = nan }\n', 4,
                      "providers[0].policy.attempt_timeout_s: must be a number, not nan"),
    "concurrency-absurd": ('[chains.main]\nconcurrency = 100000000000000000000\n'
                           '[[chains.main.providers]]\nvendor = "fake"\n', 2,
                           "chains.main.concurrency: Input should be less than or equal to 1024"),
    "key-in-the-file": ('[chains.main]\n[[chains.main.providers]]\nvendor = "openai"\n'
                        'options = { api_key = "sk-proj-0123456789abcdefghijklmnop" }\n', 4,
                        "api_key"),
    "two-chains-no-default": ('[chains.a]\n[[chains.a.providers]]\nvendor = "fake"\n'
                              '[chains.b]\n[[chains.b.providers]]\nvendor = "fake"\n', None,
                              "default_chain"),
    "empty-file": ("", None, "chains: required"),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_malformed_config_names_file_line_and_field(name: str, tmp_path: Path) -> None:
    text, line, fragment = CONFIGS[name]
    path = tmp_path / "fallback-chain.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert fragment in message, message
    assert str(path) in message
    if line is not None:
        assert f"{path}:{line}:" in message, message


def test_a_config_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "fallback-chain.toml"
    path.write_bytes(b'[chains.main]\n# caf\xe9\n[[chains.main.providers]]\nvendor = "fake"\n')
    with pytest.raises(ConfigError, match=r"fallback-chain.toml:2: not UTF-8 text: byte 0xe9 "
                                          r"at column 6"):
        load_config(path)


def test_an_unknown_model_is_a_warning_with_the_line_and_a_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "fallback-chain.toml"
    path.write_text('[chains.main]\n[[chains.main.providers]]\nvendor = "openai"\n'
                    'model = "gpt-image-22"\n')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config = load_config(path)
    [warning] = [str(w.message) for w in caught]
    assert f"{path}:4: chains.main.providers[0].model" in warning
    assert "'gpt-image-22' is not in the model catalogue" in warning
    assert "did you mean 'gpt-image-2'" in warning
    assert config.warnings == [warning]


# ================================================================= the command line

CLI_KEY_VAR = "HOSTILE_INPUT_TEST_KEY"


def _chain_config(url: str, tmp: Path, extra: str = "") -> Path:
    """A config whose chain is the three real adapters pointed at the loopback emulator."""
    path = tmp / "fallback-chain.toml"
    path.write_text(f'''
default_chain = "main"
[chains.main]
ledger = "ledger.db"
attempt_timeout_s = 20
{extra}
[[chains.main.providers]]
vendor = "gemini"
model = "gemini-2.5-flash-image"
base_url = "{url}"
key_env = "{CLI_KEY_VAR}"
[[chains.main.providers]]
vendor = "leonardo"
base_url = "{url}"
key_env = "{CLI_KEY_VAR}"
options = {{ poll_initial_s = 0.05 }}
[[chains.main.providers]]
vendor = "openai"
model = "gpt-image-2"
base_url = "{url}/v1"
key_env = "{CLI_KEY_VAR}"
''')
    return path


@pytest.fixture
def cli(server: tuple[Emulator, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
        ) -> tuple[Emulator, Path, Callable[..., Any]]:
    emu, url = server
    for var in ("FALLBACK_CHAIN_CONFIG", "FALLBACK_CHAIN_LEDGER", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv(CLI_KEY_VAR, KEY)
    monkeypatch.setenv("FALLBACK_CHAIN_KEY_ENV", CLI_KEY_VAR)  # one variable, three vendors
    monkeypatch.setenv("COLUMNS", "400")  # no wrapped lines in what is asserted
    monkeypatch.chdir(tmp_path)
    config = _chain_config(url, tmp_path)

    def invoke(*args: str) -> Any:
        from fallback_chain.cli import app

        return CliRunner().invoke(app, list(args))

    return emu, config, invoke


def test_cli_control_a_good_prompt_reaches_the_emulator(cli: Any, tmp_path: Path) -> None:
    """The control that makes "the log is empty" meaningful below: this config does reach the
    emulator."""
    emu, config, invoke = cli
    result = invoke("generate", "a red fox", "--size", "512x512", "--config", str(config),
                    "--out", str(tmp_path / "out"), "--json")
    assert result.exit_code == 0, result.output
    assert emu.log.count(vendor="gemini", endpoint="generate") == 1


CLI_ARGS: dict[str, tuple[list[str], str]] = {
    "prompt-empty": ([""], "prompt: must not be empty"),
    "prompt-whitespace": (["  \t "], "prompt: must not be empty"),
    "prompt-100k": (["x" * 100_000], "prompt: is 100,000 characters"),
    "prompt-undecodable-argv": (["caf\udce9"], "surrogate"),  # a Latin-1 byte in UTF-8 argv
    "size-0x0": (["a fox", "--size", "0x0"], "size: 0x0 is out of range"),
    "size-negative": (["a fox", "--size=-5x10"], "size: '-5x10' is not a size"),
    "size-words": (["a fox", "--size", "abc"], "'abc' is not a size"),
    "size-half": (["a fox", "--size", "1024x"], "'1024x' is not a size"),
    "size-huge": (["a fox", "--size", "99999x99999"], "out of range"),
    "size-ratio-0-1": (["a fox", "--size", "0:1"], "aspect ratio 0:1"),
    "n-0": (["a fox", "--n", "0"], "--n"),
    "n-11": (["a fox", "--n", "11"], "--n"),
    "n-words": (["a fox", "--n", "three"], "--n"),
    "quality": (["a fox", "--quality", "ultra"], "--quality"),
    "seed-negative": (["a fox", "--seed=-1"], "seed: must be between 0 and"),
    "negative-prompt-huge": (["a fox", "--negative-prompt", "x" * 40_000],
                             "negative_prompt: is 40,000 characters"),
}


@pytest.mark.parametrize("name", sorted(CLI_ARGS))
def test_cli_generate_refuses_bad_input_and_sends_nothing(cli: Any, name: str,
                                                          tmp_path: Path) -> None:
    emu, config, invoke = cli
    args, fragment = CLI_ARGS[name]
    result = invoke("generate", *args, "--config", str(config), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert fragment in result.output, result.output
    assert len(result.output) < 2_000  # the 100k prompt is not echoed back
    assert len(emu.log) == 0
    assert not (tmp_path / "out").exists()


#: Config errors through the CLI: (the bad lines, added to a file whose default chain is the
#: three real adapters on the loopback emulator; what the error must say).
CLI_CONFIGS: dict[str, tuple[str, str]] = {
    "bad-toml": ("[chains.main\n", "not valid TOML"),
    "unknown-vendor": ('[chains.main]\n[[chains.main.providers]]\nvendor = "midjourney"\n',
                       "chains.main.providers[0].vendor: unknown vendor 'midjourney'"),
    "wrong-type": ('[chains.main]\ndeadline_s = "soon"\n[[chains.main.providers]]\n'
                   'vendor = "fake"\n', "chains.main.deadline_s: Input should be a valid number"),
    "unknown-key": ('[chains.main]\ndeadine_s = 5\n[[chains.main.providers]]\n'
                    'vendor = "fake"\n', "chains.main.deadine_s: unknown key (did you mean "
                                           "'deadline_s'?)"),
    "option-wrong-type": ('[chains.main]\n[[chains.main.providers]]\nvendor = "leonardo"\n'
                          'options = { max_download_bytes = "big" }\n',
                          "option 'max_download_bytes' must be int (got 'big')"),
    "nan": ('[chains.main]\ndeadline_s = nan\n[[chains.main.providers]]\nvendor = "fake"\n',
            "chains.main.deadline_s: must be a number, not nan"),
    "absurd-concurrency": ('[chains.main]\nconcurrency = 100000000000000000000\n'
                           '[[chains.main.providers]]\nvendor = "fake"\n',
                           "chains.main.concurrency: Input should be less than or equal to "
                           "1024"),
}


@pytest.mark.parametrize("name", sorted(CLI_CONFIGS))
def test_cli_refuses_a_malformed_config_and_sends_nothing(cli: Any, name: str,
                                                          tmp_path: Path) -> None:
    emu, good, invoke = cli
    bad_lines, fragment = CLI_CONFIGS[name]
    bad = tmp_path / "bad.toml"
    chain = good.read_text().replace("chains.main", "chains.good").replace(
        'default_chain = "main"', 'default_chain = "good"')
    bad.write_text(chain + "\n" + bad_lines)
    line = len(chain.splitlines()) + 2  # where the bad lines start, give or take
    for command in (["generate", "a fox"],
                    ["batch", str(_csv(tmp_path)), "--out", str(tmp_path / "out")],
                    ["batch", str(_csv(tmp_path)), "--dry-run"]):
        result = invoke(*command, "--config", str(bad))
        assert result.exit_code == 2, result.output
        assert fragment in result.output, result.output
        reported = int(result.output.split(f"{bad}:", 1)[1].split(":", 1)[0])
        assert line - 1 <= reported <= line + 3, result.output
    assert len(emu.log) == 0
    assert not (tmp_path / "out").exists()


def _csv(tmp: Path) -> Path:
    path = tmp / "briefs.csv"
    path.write_text("prompt,size\na red fox,512x512\n")
    return path


def test_cli_unknown_model_warns_with_the_line(cli: Any, tmp_path: Path) -> None:
    _, config, invoke = cli
    config.write_text(config.read_text().replace('model = "gpt-image-2"',
                                                 'model = "gpt-image-22"'))
    result = invoke("generate", "a fox", "--size", "512x512", "--config", str(config),
                    "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "gpt-image-22" in result.output and "did you mean 'gpt-image-2'" in result.output


# ============================================================================ batch input

def test_cli_batch_non_utf8_rows_are_named_and_never_sent(cli: Any, tmp_path: Path) -> None:
    emu, config, invoke = cli
    source = tmp_path / "briefs.csv"
    source.write_bytes(b"id,prompt,size\n"
                       b"a,a red fox,512x512\n"
                       b"b,caf\xe9 au lait,512x512\n"     # Latin-1, not UTF-8
                       b"c,\xff\xfe\x00b\x00a\x00d,512x512\n"  # UTF-16 debris
                       b"d,a blue whale,512x512\n")
    result = invoke("batch", str(source), "--out", str(tmp_path / "out"), "--config",
                    str(config), "--json", "--progress", "none")
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert (summary["rows"], summary["invalid_rows"], summary["delivered"]) == (4, 2, 2)
    failures = (tmp_path / "out" / "failures.csv").read_text()
    assert f"{source}, line 3: not valid UTF-8: byte 0xe9 at column 6" in failures
    assert f"{source}, line 4: not valid UTF-8: byte 0xff at column 3" in failures
    sent = [e.prompt for e in emu.requests(vendor="gemini", endpoint="generate")]
    assert sorted(sent) == ["a blue whale", "a red fox"]  # the bad rows never left


def test_cli_batch_non_utf8_header_is_refused_with_its_line(cli: Any, tmp_path: Path) -> None:
    emu, config, invoke = cli
    source = tmp_path / "briefs.csv"
    source.write_bytes(b"pr\xf6mpt,size\na red fox,512x512\n")
    for extra in ([], ["--dry-run"]):
        result = invoke("batch", str(source), "--out", str(tmp_path / "out"), "--config",
                        str(config), *extra)
        assert result.exit_code == 2, result.output
        assert f"{source}, line 1: not valid UTF-8: byte 0xf6 at column 3" in result.output
    assert len(emu.log) == 0


BAD_ROWS: list[tuple[bytes, str]] = [
    (b"caf\xe9 au lait,512x512,1", "line {n}: not valid UTF-8: byte 0xe9 at column 4"),
    (b",512x512,1", "line {n}: prompt: is required"),
    (b"   ,512x512,1", "line {n}: prompt: is required"),
    (b"a fox,0x0,1", "line {n}: size: 0x0 is out of range"),
    (b"a fox,-5x10,1", "line {n}: size: '-5x10' is not a size"),
    (b"a fox,abc,1", "line {n}: size: 'abc' is not a size"),
    (b"a fox,0:1,1", "line {n}: size: aspect ratio 0:1"),
    (b"a fox,512x512,0", "line {n}: n: must be between 1 and 10 (got 0)"),
    (b"a fox,512x512,11", "line {n}: n: must be between 1 and 10 (got 11)"),
    (b"a fox,512x512,two", "line {n}: n: must be a whole number"),
    (b"a fox,512x512", "line {n}: has 2 cells but the header has 3 columns"),
    (b"a \x00fox,512x512,1", "line {n}: prompt: contains the control character U+0000"),
    (b"\"" + b"x" * 40_000 + b"\",512x512,1", "line {n}: prompt: is 40,000 characters"),
    (b"x" * ((1 << 20) + 10) + b",512x512,1", "line {n}: line is longer than 1 MiB"),
]


def test_batch_reader_names_file_line_and_field_and_sends_nothing(tmp_path: Path) -> None:
    """One valid row between every bad one: each bad row is a ``RowError`` naming the file,
    its line and (where it has one) the field; only the valid rows reach a provider."""
    lines = [b"prompt,size,n"]
    for i, (row, _) in enumerate(BAD_ROWS):
        lines += [f"good brief {i},512x512,1".encode(), row]
    source = tmp_path / "briefs.csv"
    source.write_bytes(b"\n".join(lines) + b"\n")
    index = BatchIndex(str(tmp_path))
    try:
        with open_input(str(source)) as fh:
            _, items = iter_items(fh, "csv", str(source), index)
            got = list(items)
    finally:
        index.close()
    errors = [str(e) for e in got if isinstance(e, RowError)]
    assert len(errors) == len(BAD_ROWS)
    for i, ((_, expected), error) in enumerate(zip(BAD_ROWS, errors, strict=True)):
        assert error.startswith(f"{source}, "), error
        assert expected.format(n=2 * i + 3) in error, (error, expected)
    assert len([g for g in got if isinstance(g, BatchItem)]) == len(BAD_ROWS)

    from fallback_chain.batch.engine import BatchOptions, run_batch

    fake = FakeProvider("fake", image_size=(64, 64))
    summary = asyncio.run(run_batch(Chain([fake], log=False), str(source), str(tmp_path / "o"),
                                    BatchOptions(handle_signals=False, fsync=False)))
    assert (summary.invalid_rows, summary.delivered) == (len(BAD_ROWS), len(BAD_ROWS))
    assert fake.calls == len(BAD_ROWS)
    assert all("good brief" in r.prompt for r in fake.requests)


BAD_JSONL: list[tuple[str, str]] = [
    ('{"prompt": "a fox"', "not valid JSON"),
    ('["a fox"]', "expected a JSON object, got list"),
    ('"a fox"', "expected a JSON object, got str"),
    ('{"prompt": {"text": "a fox"}}', "prompt: must be text"),
    ('{"prompt": null}', "prompt: is required"),
    ('{"prompt": "a fox", "n": true}', "n: must be an integer, not True"),
    ('{"prompt": "a fox", "n": 0}', "n: must be between 1 and 10 (got 0)"),
    ('{"prompt": "a fox", "n": 1e400}', "n:"),
    ('{"prompt": "a fox", "size": "0:1"}', "size: aspect ratio 0:1"),
    ('{"prompt": "a fox", "seed": -1}', "seed: must be between 0 and"),
    ('{"prompt": "a fox", "images": ["/etc/passwd"]}', "images: edits are not supported"),
    ('{"prompt": "a fox", "mask": "x"}', "mask: edits are not supported"),
    ('{"prompt": "a fox", "id": ["a"]}', "id: must be a string"),
    ('{"prompt": "' + "x" * 40_000 + '"}', "prompt: is 40,000 characters"),
    ('{"prompt": "a \\u0000 fox"}', "prompt: contains the control character U+0000"),
    ('{"prompt": "a fox", "metadata": [1]}', "metadata: must be a JSON object"),
]


def test_jsonl_rows_name_file_line_and_field(tmp_path: Path) -> None:
    lines = []
    for i, (row, _) in enumerate(BAD_JSONL):
        lines += [json.dumps({"prompt": f"good brief {i}"}), row]
    source = tmp_path / "briefs.jsonl"
    source.write_text("\n".join(lines) + "\n")
    index = BatchIndex(str(tmp_path))
    try:
        with open_input(str(source)) as fh:
            _, items = iter_items(fh, "jsonl", str(source), index)
            got = list(items)
    finally:
        index.close()
    errors = [str(e) for e in got if isinstance(e, RowError)]
    assert len(errors) == len(BAD_JSONL), errors
    for i, ((_, expected), error) in enumerate(zip(BAD_JSONL, errors, strict=True)):
        assert error.startswith(f"{source}, line {2 * i + 2}: "), error
        assert expected in error, (error, expected)
    assert len([g for g in got if isinstance(g, BatchItem)]) == len(BAD_JSONL)


def test_jsonl_with_a_lone_surrogate_is_a_row_error(tmp_path: Path) -> None:
    """``\\ud800`` is valid JSON but not valid text: it must not reach a provider (where it
    could not even be encoded) nor the sidecar."""
    source = tmp_path / "briefs.jsonl"
    source.write_text('{"prompt": "fine"}\n{"prompt": "caf\\udce9"}\n')
    index = BatchIndex(str(tmp_path))
    try:
        with open_input(str(source)) as fh:
            _, items = iter_items(fh, "jsonl", str(source), index)
            got = list(items)
    finally:
        index.close()
    assert isinstance(got[0], BatchItem)
    assert isinstance(got[1], RowError)
    assert str(got[1]).startswith(f"{source}, line 2: prompt: is not valid Unicode text")


def test_a_header_without_prompt_is_refused_before_any_row(tmp_path: Path) -> None:
    source = tmp_path / "briefs.csv"
    source.write_text("promt,size\na fox,512x512\n")
    with open_input(str(source)) as fh, pytest.raises(InputError, match="line 1: the first "
                                                                        "line must be a header"):
        read_raw_rows(fh, "csv", str(source))


# ------------------------------------------------------------------- a million rows

ROWS = 1_000_000
WINDOW = 50_000


def _statm_rss() -> int:
    """This process's resident memory now, in bytes (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def _traced_peak(rows: Iterator[Any], count: int) -> int:
    """Take ``count`` rows with tracemalloc on; the peak it saw, in bytes."""
    tracemalloc.start()
    try:
        for _ in range(count):
            next(rows)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def million(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,000,000 generated rows (52 MB), written once for the module in about a second."""
    source = tmp_path_factory.mktemp("million") / "million.csv"
    with source.open("w") as fh:
        fh.write("prompt,size,n\n")
        fh.writelines(f"brief number {i} for the spring catalogue,512x512,1\n"
                      for i in range(ROWS))
    return source


@pytest.mark.slow
def test_a_million_row_csv_is_streamed_not_loaded(million: Path) -> None:
    """The reader walks all 1,000,000 rows: tracemalloc's peak over the first and over the
    last 50,000 rows stays under 4 MiB (a reader that kept its rows would hold 20+ MB by the
    end, one that read the file whole 52 MB at the start), the process's memory does not
    grow between row 50,000 and the last, and every row comes out, in order."""
    assert million.stat().st_size > 40 * 2**20
    started = time.perf_counter()
    with open_input(str(million)) as fh:
        _, rows = read_raw_rows(fh, "csv", str(million))
        first_peak = _traced_peak(rows, WINDOW)
        rss_early = _statm_rss()
        for _ in range(ROWS - 2 * WINDOW):
            next(rows)
        last_peak = _traced_peak(rows, WINDOW - 1)
        last = next(rows)
        assert next(rows, None) is None
        rss_late = _statm_rss()
    elapsed = time.perf_counter() - started
    assert last.line == ROWS + 1 and last.values is not None
    assert last.values["prompt"] == f"brief number {ROWS - 1} for the spring catalogue"
    assert first_peak < 4 * 2**20 and last_peak < 4 * 2**20, (first_peak, last_peak)
    assert rss_late - rss_early < 16 * 2**20, (rss_early, rss_late)
    assert elapsed < 90, elapsed


def test_the_whole_item_pipeline_is_lazy_on_a_huge_file(million: Path, tmp_path: Path) -> None:
    """Validation too: the first item of the 1,000,000-row file comes out at once (nothing is
    read ahead), and 5,000 validated items later tracemalloc's peak is still small (nothing is
    kept: each item would hold a few KB)."""
    index = BatchIndex(str(tmp_path))
    try:
        with open_input(str(million)) as fh:
            started = time.perf_counter()
            _, items = iter_items(fh, "csv", str(million), index)
            first = next(items)
            assert time.perf_counter() - started < 1.0
            assert isinstance(first, BatchItem) and first.line == 2
            peak = _traced_peak(items, 5_000)
    finally:
        index.close()
    assert peak < 4 * 2**20, peak
