"""How each kind of doc example is checked (the rules: docs/README.md, "Examples")."""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import tomllib
import warnings
from pathlib import Path
from typing import Any

from doc_examples import (
    ROOT,
    Example,
    arrow_lines,
    commands,
    copy_of,
    missing_lines,
    shell_script,
)

TIMEOUT_S = 90
#: What no example may see: real keys and a config of the machine running the tests.
SCRUBBED = ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "LEONARDO_API_KEY",
            "FALLBACK_CHAIN_CONFIG", "FALLBACK_CHAIN_REDIS_URL", "FALLBACK_CHAIN_KEY_ENV",
            "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


_redis_lock = threading.Lock()
_in_process = threading.Lock()
_redis: list[Any] = []  # the one redis-server of the doc examples, started on first need


def redis_url() -> str:
    """A real redis-server for the examples that need one (tests/state's helper), stopped
    when the test process exits."""
    with _redis_lock:
        if not _redis:
            spec = importlib.util.spec_from_file_location(
                "doc_redis_helpers", ROOT / "tests" / "state" / "redis_helpers.py")
            assert spec is not None and spec.loader is not None
            helpers = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(helpers)
            folder = Path(tempfile.mkdtemp(prefix="doc-redis-"))
            server = helpers.RedisServer(folder)
            server.start()
            atexit.register(server.stop)
            _redis.append(server)
        return str(_redis[0].url)


_s3: list[str] = []  # the endpoint of the one S3 store of the doc examples


def s3_endpoint() -> str:
    """moto's S3 server on a loopback port (as tests/batch runs it), with a bucket named
    ``bucket``; stopped when the test process exits."""
    with _redis_lock:
        if not _s3:
            import s3fs
            from moto.server import ThreadedMotoServer

            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
            server.start()
            atexit.register(server.stop)
            endpoint = f"http://127.0.0.1:{port}"
            fs = s3fs.S3FileSystem(key=S3_KEY, secret=S3_KEY, skip_instance_cache=True,
                                   client_kwargs={"endpoint_url": endpoint,
                                                  "region_name": "eu-west-1"})
            fs.mkdir("bucket")
            _s3.append(endpoint)
        return _s3[0]


S3_KEY = "testing"


def environment(workdir: Path, example: Example | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in SCRUBBED and not k.startswith("AWS_")}
    if example is not None and example.needs == "redis":
        env["FALLBACK_CHAIN_REDIS_URL"] = redis_url()
    if example is not None and example.needs == "s3":
        env.update(S3_ENDPOINT_URL=s3_endpoint(), AWS_ACCESS_KEY_ID=S3_KEY,
                   AWS_SECRET_ACCESS_KEY=S3_KEY, AWS_DEFAULT_REGION="eu-west-1")
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    env.update(HOME=str(home), COLUMNS="160", NO_COLOR="1", TERM="dumb",
               PYTHONPATH=str(ROOT),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    return env


def _fail(example: Example, message: str) -> None:
    raise AssertionError(f"{example.where()}: {message}")


def compare_output(example: Example, stdout: str) -> None:
    expected = arrow_lines(example.code) if example.kind == "python" else []
    if example.output is not None:
        expected += example.output.splitlines()
    missing = missing_lines(expected, stdout)
    if missing:
        _fail(example, "the quoted output differs from what it prints; not printed (in order):"
              f"\n  {chr(10).join(missing)}\n--- it printed:\n{stdout}")


# -- python -------------------------------------------------------------------------------------

def check_copy(example: Example) -> None:
    """A block introduced as "This is `PATH`:" is that file, byte for byte."""
    path = copy_of(example)
    if path is not None and path.read_text(encoding="utf-8") != example.code:
        _fail(example, f"says it is {path.relative_to(ROOT)}, but differs from it")


def check_python(example: Example, workdir: Path) -> None:
    check_copy(example)
    try:
        compile(example.code, example.id, "exec")
    except SyntaxError as exc:
        _fail(example, f"not valid Python: {exc}")
    if example.fragment:
        return
    script = workdir / f"example_{example.line}.py"
    script.write_text(example.code, encoding="utf-8")
    proc = subprocess.run([sys.executable, script.name], cwd=workdir, capture_output=True,
                          text=True, timeout=TIMEOUT_S, env=environment(workdir, example))
    if proc.returncode != 0:
        _fail(example, f"exits {proc.returncode}:\n{proc.stderr[-3000:]}")
    compare_output(example, proc.stdout)


# -- toml and json -----------------------------------------------------------------------------

CONFIG_KEYS = {"default_chain", "chains", "secrets", "state", "quotas"}
VENDOR_SECTIONS = {"seed", "default", "openai", "gemini", "leonardo"}


def _kind_of_toml(doc: dict[str, Any]) -> str:
    keys = set(doc)
    if "project" in keys or "tool" in keys:
        return "pyproject"
    if "experiment" in keys or "configurations" in keys:
        return "experiment"
    if keys and keys <= CONFIG_KEYS:
        return "config"
    if keys and keys <= VENDOR_SECTIONS | _emulated_vendors():
        return "faults"
    if "policy" in keys and keys <= {"policy"}:
        return "chain-table"
    return "unknown"


def _emulated_vendors() -> set[str]:
    from fallback_chain.emulator.faults import vendors
    return set(vendors())


def validate_toml_file(kind: str, path: Path) -> None:
    """Load ``path`` with the project's own loader for ``kind`` (raises on any problem)."""
    if kind == "config":
        from fallback_chain.config import ConfigWarning, load_config
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            config = load_config(path)
            config.close()
        for w in caught:  # a missing secrets file is the reader's to make; the rest is a bug
            if issubclass(w.category, ConfigWarning) and "secrets.file" not in str(w.message):
                raise AssertionError(f"warns: {w.message}")
    elif kind == "experiment":
        from fallback_chain.simulate import load_experiment
        load_experiment(path)
    elif kind == "faults":
        from fallback_chain.emulator.faults import FaultConfig
        FaultConfig.load(path)


def check_toml(example: Example, workdir: Path) -> None:
    check_copy(example)
    try:
        doc = tomllib.loads(example.code)
    except tomllib.TOMLDecodeError as exc:
        _fail(example, f"not valid TOML: {exc}")
    kind = _kind_of_toml(doc)
    text = example.code
    if kind == "chain-table":  # a chain's keys, as in docs/config.md: those of chain 'main'
        kind, text = "config", "[chains.main]\n" + text
    if kind == "config":  # a part of a config file: completed with a chain of one fake
        chains = doc.get("chains", {})
        if not any("providers" in c for c in chains.values() if isinstance(c, dict)):
            text += '\n[[chains.main.providers]]\nvendor = "fake"\n'
        if "default_chain" not in doc and len(chains) <= 1:
            text = f'default_chain = "{next(iter(chains), "main")}"\n' + text
    if kind in ("pyproject", "unknown"):
        if kind == "unknown" and not example.fragment:
            _fail(example, f"a TOML example that is no config, experiment or fault file "
                  f"(top-level keys {sorted(doc)}); mark it <!-- fragment --> if it is part of "
                  "one")
        return
    path = workdir / f"example_{example.line}.toml"
    path.write_text(text, encoding="utf-8")
    try:
        with _in_process:  # pages run in threads; warnings filters are process-wide
            validate_toml_file(kind, path)
    except Exception as exc:
        _fail(example, f"the {kind} loader refuses it: {exc}")


def check_json(example: Example, workdir: Path) -> None:
    try:
        json.loads(example.code)
    except json.JSONDecodeError as exc:
        _fail(example, f"not valid JSON: {exc}")


# -- shell --------------------------------------------------------------------------------------

#: Plain tools a shell example may use to set up a file (they touch only its folder).
TOOLS = {"printf", "echo", "cat", "ls", "mkdir", "cp", "head"}
#: Commands that reach no vendor, serve nothing and need no key: run as written.
RUNNABLE = {"providers", "simulate", "demo", "report", "cost estimate", "cost report"}
#: Commands that call vendors: run only with --emulated (or only pricing with --dry-run).
EMULATED = {"generate", "batch", "compare", "edit", "finalize"}


def _fallback_chain_argv(text: str) -> list[str] | None:
    """The arguments after ``fallback-chain`` in a command line (None: not one)."""
    try:
        words = shlex.split(text, comments=True)
    except ValueError:
        return None
    for i, word in enumerate(words):
        if word == "fallback-chain":
            return words[i + 1:]
        if "=" not in word:  # env assignments may come first
            return None
    return None


def _cli_root() -> Any:
    import typer.main

    from fallback_chain.cli import app
    return typer.main.get_command(app)


def check_cli_words(example: Example, argv: list[str]) -> tuple[str, Any]:
    """The subcommand path of ``argv`` and its click command; every option must exist."""
    command = _cli_root()
    path: list[str] = []
    words = [w.strip("[]") for w in argv]
    while hasattr(command, "commands") and words and not words[0].startswith("-"):
        sub = command.commands.get(words[0])
        if sub is None:
            _fail(example, f"`fallback-chain {' '.join([*path, words[0]])}`: no such command")
        path.append(words.pop(0))
        command = sub
    known = {"--help"}
    for param in command.params:
        known.update(getattr(param, "opts", ()), getattr(param, "secondary_opts", ()))
    for word in words:
        if word.startswith("-") and len(word) > 1 and not word[1].isdigit():
            name = word.split("=", 1)[0]
            if name not in known:
                _fail(example, f"`fallback-chain {' '.join(path)}` has no option {name} "
                      f"(it has {', '.join(sorted(known))})")
    return " ".join(path), command


def check_shell(example: Example, workdir: Path) -> None:
    script = shell_script(example)
    syntax = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    if syntax.returncode != 0:
        _fail(example, f"not valid shell: {syntax.stderr}")
    cmds = commands(example)
    for cmd in cmds:
        argv = _fallback_chain_argv(cmd.text)
        if argv is not None:
            check_cli_words(example, argv)
    if example.fragment:
        return
    for cmd in cmds:
        argv = _fallback_chain_argv(cmd.text)
        if argv is None and cmd.text.split()[0] not in TOOLS:
            _fail(example, f"`{cmd.text}` is not a fallback-chain command the harness may run; "
                  "mark the block <!-- fragment -->")
        sub = check_cli_words(example, argv)[0] if argv is not None else ""
        safe = (argv is None or "--help" in argv or sub in RUNNABLE
                or (sub in EMULATED and ("--emulated" in argv or "--dry-run" in argv)))
        if not safe:
            _fail(example, f"`{cmd.text}` could reach a real vendor or serve forever; use "
                  "--emulated or mark the block <!-- fragment -->")
        proc = subprocess.run(["bash", "-c", cmd.text], cwd=workdir, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT_S,
                              env=environment(workdir, example))
        if proc.returncode != cmd.exit_code:
            _fail(example, f"`{cmd.text}` exits {proc.returncode}, not {cmd.exit_code}:\n"
                  f"{proc.stdout[-3000:]}")
        missing = missing_lines(cmd.output, proc.stdout)
        if missing:
            _fail(example, f"`{cmd.text}`: the quoted output differs; not printed (in order):"
                  f"\n  {chr(10).join(missing)}\n--- it printed:\n{proc.stdout}")
    if example.output is not None:
        compare_output(example, proc.stdout)


CHECKS = {"python": check_python, "toml": check_toml, "json": check_json, "shell": check_shell}
