"""Secret hygiene: distinctive API keys are planted (through the environment and through
constructors) and must appear in no log line of any logger at DEBUG (SDKs and HTTP clients
included), no exception text (``str``, ``repr``, formatted traceback, chained causes), no
``repr`` of providers, chains, attempts, results, events or config objects, no attempt record,
no ledger row (the SQLite file's bytes), no file a batch writes, and no command-line output;
in success and in every failure the emulator can produce, vendors echoing the key included.

A leak is the whole key or any run of 8 or more of its characters (the rule of
``fallback_chain/secrets.py``); vendors' own masking (first three and last four characters,
``sk-*****...e8Vx``) is allowed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from secret_helpers import (
    ALL_KEYS,
    CTOR_KEYS,
    ECHOED,
    ENV_KEYS,
    ENV_VARS,
    FAILURES,
    VENDORS,
    LeakFinder,
    all_logs,
    cli_env,
    config_text,
    exception_texts,
    fault_for,
    start_cli,
    tree_bytes,
)

from fallback_chain import Chain, ImageRequest, Policy
from fallback_chain.emulator import Emulator, serve_in_thread
from fallback_chain.errors import ChainError
from fallback_chain.events import Event
from fallback_chain.provider import Provider
from fallback_chain.secrets import redact, register_secret

if TYPE_CHECKING:
    from fallback_chain.cost.ledger import Ledger

pytestmark = pytest.mark.filterwarnings(
    "ignore::fallback_chain.providers.catalogue.ModelLifecycleWarning")

FIND = LeakFinder()


@pytest.fixture(scope="module")
def vendor_url() -> Iterator[tuple[Emulator, str]]:
    """An emulator (on a loopback socket, so the HTTP clients' own logging runs) that accepts
    any key: the planted ones go over the wire."""
    emulator = Emulator(api_keys=None)
    with serve_in_thread(emulator) as url:
        yield emulator, url


@pytest.fixture(scope="module")
def strict_url() -> Iterator[tuple[Emulator, str]]:
    """An emulator that accepts one other key: every planted key is rejected (and OpenAI echoes
    it masked, as the real API does)."""
    emulator = Emulator(api_keys="the-right-key-is-another-one")
    with serve_in_thread(emulator) as url:
        yield emulator, url


def _provider(vendor: str, url: str, key: str | None) -> Provider:
    from fallback_chain.providers import GeminiProvider, LeonardoProvider, OpenAIProvider

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if vendor == "gemini":
            return GeminiProvider(model="gemini-2.5-flash-image", api_key=key, base_url=url)
        if vendor == "leonardo":
            return LeonardoProvider(api_key=key, base_url=url, poll_initial_s=0.01,
                                    poll_interval_s=0.01)
        return OpenAIProvider(model="gpt-image-2", api_key=key, base_url=url + "/v1")


async def _one_request(providers: list[Provider], ledger: Ledger, timeout_s: float, *,
                       check: bool) -> tuple[dict[str, str], ChainError | None]:
    """One request through a fresh chain of ``providers`` (a refusal advances, so that every
    one is tried): its result or error, every event, the ledger's rows and, with ``check``,
    each provider's preflight; every text a caller could see."""
    events: list[Event] = []
    chain = Chain(providers, name="secrets", log=True,
                  policy=Policy(attempt_timeout_s=timeout_s, max_rounds=1,
                                wait_for_cooldown=False, backoff_initial_s=0.01,
                                on_content_policy="advance"))
    chain.events.subscribe(events.append)
    chain.events.subscribe(ledger)
    texts: dict[str, str] = {"repr(providers)": repr(providers), "repr(chain)": repr(chain)}
    error: ChainError | None = None
    try:
        result = await chain.agenerate(ImageRequest(prompt="a lighthouse", metadata={"k": 1}))
        texts["result"] = repr(result) + result.model_dump_json(exclude={"images"})
        texts["attempts"] = "\n".join(repr(a) + a.model_dump_json() for a in result.attempts)
    except ChainError as exc:
        error = exc
        texts["exception"] = exception_texts(exc)
    except Exception as exc:  # not a typed outcome: a failure of its own, shown in full
        raise AssertionError("".join(traceback.format_exception(exc))) from None
    for provider in providers if check else ():
        try:
            found = await provider.check()
            texts[f"check {provider.name}"] = repr(found) + found.detail
        except Exception as exc:
            texts[f"check {provider.name}"] = exception_texts(exc)
    texts["events"] = "\n".join(repr(e) for e in events)
    ledger.flush()
    return texts, error


async def _scenarios(emulator: Emulator, url: str, keys: dict[str, str] | None,
                     failures: list[str | None], folder: Path, *, rejected: bool = False
                     ) -> dict[str, list[str]]:
    """For each of ``failures`` (``None``: success): with a failure, one request through
    Gemini, Leonardo and OpenAI, each failing that way; without, one request per vendor,
    delivered (or, ``rejected``, refused for the key), and each provider's preflight. The
    adapters take ``keys`` (``None``: they read the environment). Returns the leaks found,
    by scenario and channel; the ledger's file is read at the end."""
    from fallback_chain.cost.ledger import Ledger

    built = [_provider(v, url, keys[v] if keys else None) for v in VENDORS]
    ledger = Ledger(folder / "ledger.db", batch_size=1)
    leaks: dict[str, list[str]] = {}
    try:
        with all_logs() as lines:
            for failure in failures:
                faults: dict[str, Any] = {}
                for vendor in VENDORS:
                    faults[vendor] = {"job_delay_s": 0.01}
                    if failure is not None:
                        key = keys[vendor] if keys else ENV_KEYS[vendor]
                        faults[vendor]["script"] = [fault_for(failure, vendor, key)] * 3
                emulator.set_faults(faults)
                emulator.reset()
                groups = [built] if failure is not None else [[p] for p in built]
                timeout = 0.25 if failure == "timeout" else 10.0
                for group in groups:
                    seen = len(lines)
                    texts, error = await _one_request(group, ledger, timeout,
                                                      check=failure is None)
                    texts["logs"] = "\n".join(lines[seen:])
                    assert lines[seen:], "the log capture saw nothing"
                    where = f"{failure or 'success'}/{group[0].name}"
                    if rejected:
                        assert error is not None and error.attempts[0].outcome == "auth_error"
                        if group[0].name == "openai":  # the vendor's own mask got through
                            key = keys["openai"] if keys else ENV_KEYS["openai"]
                            assert f"provided: {key[:3]}***" in texts["exception"]
                    elif failure is None:
                        assert error is None, where
                    else:
                        assert error is not None and len(error.attempts) >= len(VENDORS), where
                        if failure.startswith("echo"):  # each vendor's message got through
                            said = sum(texts["exception"].count(w) for w in ECHOED)
                            assert said >= len(VENDORS), where
                    for channel, pieces in FIND.leaks(texts).items():
                        leaks[f"{where}/{channel}"] = pieces
    finally:
        for provider in built:
            await provider.aclose()
        ledger.close()
    for path, pieces in FIND.leaks(tree_bytes(folder)).items():
        leaks[f"ledger file {path}"] = pieces
    return leaks


SCENARIOS: list[str | None] = [None, *FAILURES]


def test_keys_from_the_environment_never_escape(
        vendor_url: tuple[Emulator, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    emulator, url = vendor_url
    for vendor, key in ENV_KEYS.items():
        monkeypatch.setenv(ENV_VARS[vendor], key)
    assert asyncio.run(_scenarios(emulator, url, None, SCENARIOS, tmp_path)) == {}


def test_keys_given_to_constructors_never_escape(
        vendor_url: tuple[Emulator, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment holds other keys (planted too); the constructors' keys are sent."""
    emulator, url = vendor_url
    for vendor, key in ENV_KEYS.items():
        monkeypatch.setenv(ENV_VARS[vendor], key)
    assert asyncio.run(_scenarios(emulator, url, CTOR_KEYS, SCENARIOS, tmp_path)) == {}


def test_no_key_escapes_when_the_vendor_rejects_it(
        strict_url: tuple[Emulator, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The real 401 path: the emulator checks the key, OpenAI answers "Incorrect API key
    provided: sk-*****...e8Vx" (first three and last four characters, allowed)."""
    emulator, url = strict_url
    for vendor, key in ENV_KEYS.items():
        monkeypatch.setenv(ENV_VARS[vendor], key)
    for keys, folder in ((None, "env"), (CTOR_KEYS, "ctor")):
        assert asyncio.run(_scenarios(emulator, url, keys, [None], tmp_path / folder,
                                      rejected=True)) == {}


# ------------------------------------------------------------------ a batch, in this process

class _SwitchingChain(Chain):
    """A chain that sets the emulator's faults from each request's prompt before serving it
    (``all:FAILURE``: every vendor fails that way, except that only Gemini times out;
    ``mixed:FAILURE``: Gemini and Leonardo do, OpenAI delivers; ``all:success``), so one batch
    (one item at a time) walks every failure."""

    emulator: Emulator
    keys: dict[str, str]

    async def agenerate(self, request: ImageRequest | str | None = None, /,
                        **fields: Any) -> Any:
        assert isinstance(request, ImageRequest)
        how, failure = request.prompt.split(":", 1)
        faults: dict[str, Any] = {}
        for vendor in VENDORS:
            faults[vendor] = {"job_delay_s": 0.01}
            if failure != "success" and not (how == "mixed" and vendor == "openai"):
                fault = fault_for(failure, vendor, self.keys[vendor])
                if failure == "timeout" and vendor != "gemini":
                    fault = "500"  # one timeout (Gemini's, short) is enough
                faults[vendor]["script"] = [fault] * 3
        self.emulator.set_faults(faults)
        return await super().agenerate(request, **fields)


def test_a_batch_writes_no_key_in_any_file_message_or_log(
        vendor_url: tuple[Emulator, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every failure as a row of one batch (and vendors echoing the key before another one
    delivers): no key in the images' sidecars, the manifest, the failures file, the cache, the
    progress messages, the summary or the logs."""
    import io

    from fallback_chain.batch import BatchOptions, run_batch
    from fallback_chain.batch.progress import PlainReporter

    emulator, url = vendor_url
    emulator.reset()
    for vendor, key in ENV_KEYS.items():
        monkeypatch.setenv(ENV_VARS[vendor], key)
    rows = [{"id": "ok", "prompt": "all:success"}]
    rows += [{"id": f"all-{f}", "prompt": f"all:{f}"} for f in FAILURES]
    rows += [{"id": f"mixed-{f}", "prompt": f"mixed:{f}"} for f in FAILURES if "echo" in f]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    chain = _SwitchingChain(
        [_provider(v, url, None) for v in VENDORS], name="secrets", log=True,
        policy=Policy(attempt_timeout_s=10, max_rounds=1, wait_for_cooldown=False,
                      backoff_initial_s=0.01, breaker_failures=1000,  # every row a fresh try
                      cooldowns_s={"rate_limited": 0, "auth_error": 0,
                                   "quota_exhausted": 0, "not_found": 0},
                      providers={"gemini": {"attempt_timeout_s": 1.0}}))
    chain.emulator, chain.keys = emulator, ENV_KEYS
    stream = io.StringIO()

    async def go() -> Any:
        async with chain:
            return await run_batch(chain, str(source), str(tmp_path / "out"),
                                   BatchOptions(concurrency=1, handle_signals=False,
                                                cache=str(tmp_path / "cache")),
                                   reporter=PlainReporter(stream, every_s=0))

    with all_logs() as lines:
        summary = asyncio.run(go())
    assert summary.delivered == 1 + sum("echo" in f for f in FAILURES)
    assert summary.failed == len(FAILURES)
    texts: dict[str, str | bytes] = {
        "progress": stream.getvalue(), "logs": "\n".join(lines),
        "summary": repr(summary) + json.dumps(summary.to_dict(), default=str),
        **tree_bytes(tmp_path / "out", tmp_path / "cache")}
    manifest = (tmp_path / "out" / "manifest.jsonl").read_text()
    assert manifest.count("Incorrect API key provided") >= 2 * len(VENDORS)  # masked
    assert FIND.leaks(texts) == {}


def test_an_unexpected_error_carrying_a_key_is_masked_in_the_batch_outputs(
        tmp_path: Path) -> None:
    """A chain that raises something other than a ``ChainError`` (a bug below the batch) with
    a key in its message: before the fix the message went as it was into the manifest, the
    failures file and the progress messages."""
    import io

    from fallback_chain.batch import BatchOptions, run_batch
    from fallback_chain.batch.progress import PlainReporter
    from fallback_chain.providers import FakeProvider

    key = CTOR_KEYS["leonardo"]
    register_secret(key)  # as the adapter holding it would

    class Broken(Chain):
        async def agenerate(self, request: ImageRequest | str | None = None, /,
                            **fields: Any) -> Any:
            raise RuntimeError(f"request failed: Authorization: Bearer {key} ({key[:13]}...)")

    source = tmp_path / "in.csv"
    source.write_text("id,prompt\na,a red fox\n")
    stream = io.StringIO()
    chain = Broken([FakeProvider("fake")], log=False)
    with all_logs() as lines:
        summary = asyncio.run(run_batch(chain, str(source), str(tmp_path / "out"),
                                        BatchOptions(handle_signals=False),
                                        reporter=PlainReporter(stream, every_s=0)))
    assert summary.failed == 1
    texts: dict[str, str | bytes] = {"progress": stream.getvalue(), "logs": "\n".join(lines),
                                     **tree_bytes(tmp_path / "out")}
    assert "request failed" in (tmp_path / "out" / "failures.csv").read_text()
    assert FIND.leaks(texts) == {}


# ------------------------------------------------------------------ the redaction rule itself

def test_redact_masks_the_key_and_any_long_piece_but_keeps_the_vendors_own_mask() -> None:
    """Defect found: only whole registered keys (and ``sk-``/``AIza`` shapes) were masked, so
    a vendor echoing a Leonardo key cut short, or a piece of a Gemini key, leaked it."""
    leo, gem = CTOR_KEYS["leonardo"], CTOR_KEYS["gemini"]
    for key in (leo, gem):
        register_secret(key)
    cases = {
        f"bad key {leo}": "bad key ***",
        f"Incorrect API key provided: {leo[:20]} (cut)": "Incorrect API key provided: *** (cut)",
        f"quota of key ({gem[9:21]}) exceeded": "quota of key (***) exceeded",
        f"({leo[3:11]}) and ({gem[-8:]})": "(***) and (***)",  # 8 characters: masked
        f"{leo[:7]}***{leo[-4:]} rejected": f"{leo[:7]}***{leo[-4:]} rejected",  # 7 and 4
        "sk-PLA****************c6e8 was rejected": "sk-PLA****************c6e8 was rejected",
    }
    for text, masked in cases.items():
        assert redact(text) == masked
    for key in ALL_KEYS:  # planted, registered or not: the known shapes
        register_secret(key)
        assert FIND.find(redact(f"a {key} b {key[2:30]} c")) == []


def test_short_secrets_are_masked_whole_only() -> None:
    """Secrets under 32 characters (test and emulator keys, made of words) are masked whole;
    their pieces are ordinary words ("emulator" in "not-the-emulator-key"): masking those
    everywhere turned the JSON key "emulator" of ``fallback-chain demo --json`` into ***."""
    register_secret("zq-not-the-emulator-key-77")  # 26 characters
    assert redact("the zq-not-the-emulator-key-77 key") == "the *** key"
    assert redact('{"emulator": "zq-not-the"}') == '{"emulator": "zq-not-the"}'


def test_the_library_loggers_mask_messages_arguments_and_tracebacks() -> None:
    """Defect found: the router logs an adapter's unexpected exception with its traceback
    (``log.warning(..., exc_info=True)`` in ``routing.py``); a key in that exception's text
    reached every handler. The library's loggers now carry a redacting filter."""
    key = CTOR_KEYS["leonardo"]
    register_secret(key)
    with all_logs() as lines:
        for name in ("fallback_chain", "fallback_chain.batch", "fallback_chain.state"):
            logger = logging.getLogger(name)
            logger.warning("key %s and %s", key, key[5:20])
            try:
                raise ValueError(f"header Authorization: {key[:-4]}")
            except ValueError:
                logger.exception("boom %s", key)
    text = "\n".join(lines)
    assert text.count("Traceback") == 3 and text.count("ValueError") >= 3
    assert FIND.find(text) == []


def test_an_adapter_raising_an_exception_with_a_key_leaks_it_nowhere() -> None:
    """The path that found the logging defect, end to end: an adapter that raises a plain
    exception whose text holds its key."""
    from fallback_chain.providers import FakeProvider

    key = CTOR_KEYS["leonardo"]

    class Careless(FakeProvider):
        async def generate(self, request: ImageRequest, *, timeout: float) -> Any:
            raise RuntimeError(f"POST failed; sent Authorization: Bearer {key} ({key[:18]})")

    register_secret(key)
    chain = Chain([Careless("careless")], log=True, policy=Policy(backoff_initial_s=0.001))
    with all_logs() as lines:
        with pytest.raises(ChainError) as caught:
            chain.generate("a lighthouse")
        chain.close()
    texts = {"logs": "\n".join(lines), "exception": exception_texts(caught.value)}
    assert "RuntimeError" in texts["logs"] and "POST failed" in texts["exception"]
    assert FIND.leaks(texts) == {}


# ------------------------------------------------------------------ the command line

def _echoing(keys: dict[str, str]) -> dict[str, Any]:
    """Every vendor fails, echoing the key it was sent: Gemini whole, Leonardo cut short,
    OpenAI a piece of its middle (many times: several commands share the emulator)."""
    how = {"gemini": "echo_whole_key", "leonardo": "echo_key_cut_short",
           "openai": "echo_key_middle"}
    return {v: {"script": [fault_for(how[v], v, keys[v])] * 40, "job_delay_s": 0.01}
            for v in VENDORS}


def _commands(runs: dict[str, tuple[list[str], Path, dict[str, str]]]
              ) -> dict[str, tuple[int, str]]:
    """Run the commands (at once), each with every logger at DEBUG; ``{name: (exit code,
    stdout + stderr)}``."""
    started = {name: start_cli(args, cwd, env) for name, (args, cwd, env) in runs.items()}
    results = {}
    for name, proc in started.items():
        out, err = proc.communicate(timeout=120)
        results[name] = (proc.returncode, out + "\n" + err)
    return results


@pytest.mark.slow
def test_no_key_in_any_command_output_or_file(
        vendor_url: tuple[Emulator, str], strict_url: tuple[Emulator, str],
        tmp_path: Path) -> None:
    """generate, batch, check, providers, cost report and generate --emulated, as processes
    with the planted keys in their environment (and, for one check, in the secrets file) and
    every logger at DEBUG: delivered, failing with vendors echoing the keys, and rejected for
    a bad key; as tables and as JSON. Every file they write is read back too."""
    emulator, url = vendor_url
    _, strict_base = strict_url
    work = tmp_path / "work"
    work.mkdir()
    (work / "fallback-chain.toml").write_text(config_text(url))
    (work / "strict.toml").write_text(config_text(strict_base, ledger="strict-ledger.db"))
    private = tmp_path / "private"  # holds keys on purpose: not scanned
    private.mkdir()
    (private / "secrets.env").write_text(
        "".join(f"{ENV_VARS[v]}={CTOR_KEYS[v]}\n" for v in VENDORS))
    (private / "secrets.env").chmod(0o600)
    (work / "from-file.toml").write_text(config_text(
        url, ledger="file-ledger.db", secrets=str(private / "secrets.env")))
    (work / "in.csv").write_text("id,prompt\nfox,a red fox\nmug,a ceramic mug\n")
    env, no_keys = cli_env(), cli_env(None)

    emulator.reset()
    emulator.set_faults(_echoing(ENV_KEYS))
    failing = _commands({
        "generate (failing)": (["generate", "a lighthouse", "--out", "gen"], work, env),
        "generate --json (failing)": (["generate", "a lighthouse", "--json"], work, env),
        "batch (failing)": (["batch", "in.csv", "--out", "failed", "--progress", "plain",
                             "--concurrency", "1"], work, env)})
    emulator.set_faults({"leonardo": {"job_delay_s": 0.01}})
    working = _commands({
        "generate --json": (["generate", "a lighthouse", "--json", "--out", "gen"], work, env),
        "batch --json": (["batch", "in.csv", "--out", "done", "--json", "--progress", "none"],
                         work, env),
        "check --json": (["check", "--json"], work, env),
        "check (secrets file)": (["check", "--json", "-c", "from-file.toml"], work, no_keys),
        "check (rejected)": (["check", "-c", "strict.toml"], work, env),
        "generate (rejected)": (["generate", "a lighthouse", "-c", "strict.toml", "--json"],
                                work, env),
        "providers --json": (["providers", "--json"], work, env),
        "generate --emulated": (["generate", "a lighthouse", "--emulated", "--json",
                                 "--out", "emulated"], work, env)})
    report = _commands({"cost report": (["cost", "report", "--ledger", "ledger.db", "--json"],
                                        work, env)})
    results = {**failing, **working, **report}

    codes = {name: code for name, (code, _) in results.items()}
    assert codes == {
        "generate (failing)": 1, "generate --json (failing)": 1, "batch (failing)": 1,
        "generate --json": 0, "batch --json": 0, "check --json": 0,
        "check (secrets file)": 0, "check (rejected)": 1, "generate (rejected)": 1,
        "providers --json": 0, "generate --emulated": 0, "cost report": 0,
    }, {name: text[-1500:] for name, (code, text) in results.items() if code}
    said = results["generate --json (failing)"][1]
    assert all(w in said for w in ECHOED), said[-3000:]  # the echoes got through, masked
    assert "credentials rejected" in results["check (rejected)"][1]
    assert "DEBUG" in results["batch --json"][1]  # the loggers were on

    texts: dict[str, str | bytes] = {name: text for name, (_, text) in results.items()}
    texts.update(tree_bytes(work))
    assert FIND.leaks(texts) == {}
    written = {Path(p).name for p in texts if p.startswith(str(work))}
    assert {"ledger.db", "manifest.jsonl", "failures.csv", "fox.json"} <= written


# ------------------------------------------------------------------ config objects

def test_config_objects_show_no_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A config whose keys come from the environment and from its secrets file: the reprs and
    dumps of the config, its chains, the providers it builds and the chain, and the errors of
    a config that pastes a key in (refused without repeating it)."""
    from fallback_chain.config import ConfigError, load_config

    for vendor in ("gemini", "openai"):
        monkeypatch.setenv(ENV_VARS[vendor], ENV_KEYS[vendor])
    monkeypatch.delenv(ENV_VARS["leonardo"], raising=False)
    private = tmp_path / "private"
    private.mkdir()
    (private / "secrets.env").write_text(f"LEONARDO_API_KEY={CTOR_KEYS['leonardo']}\n")
    (private / "secrets.env").chmod(0o600)
    path = tmp_path / "fallback-chain.toml"
    path.write_text(config_text("http://127.0.0.1:9", secrets=str(private / "secrets.env")))
    config = load_config(path)
    try:
        spec = config.chain_config()
        built = config.build_providers()
        assert all(b.provider is not None for b in built)
        chain = config.chain(ledger=False, log=False)
        texts = {"config": repr(config) + repr(config.secrets_file) + repr(config.file),
                 "chain config": repr(spec) + spec.model_dump_json(),
                 "built": repr(built), "chain": repr(chain),
                 "warnings": "\n".join(config.warnings)}
        chain.close()
        for b in built:
            assert b.provider is not None
            asyncio.run(b.provider.aclose())
    finally:
        config.close()
    assert FIND.leaks(texts) == {}

    for pasted in (ENV_KEYS["openai"], ENV_KEYS["gemini"]):  # shaped like keys, or in the env
        bad = tmp_path / "bad.toml"
        bad.write_text(config_text("http://127.0.0.1:9").replace(
            'vendor = "leonardo"', f'vendor = "leonardo"\nname = "{pasted}"'))
        with pytest.raises(ConfigError) as caught:
            load_config(bad)
        assert "keys never go in the config file" in str(caught.value)
        assert FIND.leaks({"error": exception_texts(caught.value)}) == {}
