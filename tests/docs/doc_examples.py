"""Find the examples in README.md and docs/**/*.md (the rules: docs/README.md, "Examples").

An example is a fenced block whose language is ``python``, ``toml``, ``json``, ``bash``,
``sh``, ``shell`` or ``console``. The line before its fence (blank lines skipped) may hold a
marker:

* ``<!-- fragment -->``: a deliberate fragment, only syntax-checked (and, for shell, every
  ``fallback-chain`` command and option must exist);
* ``<!-- output -->`` before a ``text`` block: what the example just above prints, compared;
* ``<!-- needs: redis -->``: run with a real redis-server (the one of ``tests/state``), whose
  URL is in ``$FALLBACK_CHAIN_REDIS_URL``;
* ``<!-- needs: s3 -->``: run with an S3 store (moto's server, as ``tests/batch``) holding a
  bucket named ``bucket``, its URL in ``$S3_ENDPOINT_URL`` and test credentials in the
  usual AWS variables.

Python examples may also quote their output with ``# -> text`` comments: each one is a line
the example prints, in that order (``...`` matches any text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

KINDS = {"python": "python", "py": "python", "toml": "toml", "json": "json",
         "bash": "shell", "sh": "shell", "shell": "shell", "console": "shell"}
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
MARKER = re.compile(r"^\s*<!--\s*(?P<name>fragment|output|needs: redis|needs: s3)\b[^>]*-->\s*$")


@dataclass
class Example:
    path: str  # relative to the repository root
    line: int  # the line of the opening fence (1-based)
    lang: str
    code: str
    fragment: bool = False
    output: str | None = None  # an `<!-- output -->` text block right after it
    output_line: int | None = None
    console: bool = False  # a ```console block: `$ ` commands followed by their output
    lead: str = ""  # the line of prose before the block (or before its marker)
    needs: str | None = None  # `<!-- needs: redis -->` or `<!-- needs: s3 -->`: a server
    neighbours: list[Example] = field(default_factory=list, repr=False)

    @property
    def kind(self) -> str:
        return KINDS[self.lang]

    @property
    def id(self) -> str:
        return f"{self.path}:{self.line}"

    def where(self) -> str:
        return f"{self.path}, line {self.line} ({self.lang} block)"


def doc_files() -> list[Path]:
    """README.md and every Markdown page under docs/ (new pages are picked up on their own)."""
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    extra = ROOT / "CONTRIBUTING.md"
    if extra.is_file():
        files.insert(1, extra)
    return [f for f in files if f.is_file()]


def _blocks(text: str) -> list[tuple[int, str, str, str | None, str]]:
    """``(fence line, language, body, marker, lead)`` for every fenced block."""
    lines = text.splitlines()
    found: list[tuple[int, str, str, str | None, str]] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang = m.group("fence"), m.group("lang").lower()
        start = i
        i += 1
        body: list[str] = []
        while i < len(lines) and not lines[i].lstrip().startswith(fence):
            body.append(lines[i])
            i += 1
        i += 1  # the closing fence
        marker = None
        j = start - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        if j >= 0 and (mm := MARKER.match(lines[j])):
            marker = mm.group("name")
            j -= 1
            while j >= 0 and not lines[j].strip():
                j -= 1
        lead = lines[j] if j >= 0 else ""
        found.append((start + 1, lang, "\n".join(body) + "\n", marker, lead))
    return found


def examples_in(path: Path) -> list[Example]:
    rel = path.relative_to(ROOT).as_posix()
    result: list[Example] = []
    for line, lang, body, marker, lead in _blocks(path.read_text(encoding="utf-8")):
        if marker == "output" and lang in ("text", "") and result:
            result[-1].output, result[-1].output_line = body, line
            continue
        if lang not in KINDS:
            continue
        result.append(Example(rel, line, lang, body, fragment=marker == "fragment",
                              console=lang == "console", lead=lead,
                              needs=marker[7:] if marker and marker.startswith("needs:")
                              else None))
    for example in result:
        example.neighbours = result
    return result


def all_examples() -> list[Example]:
    return [e for f in doc_files() for e in examples_in(f)]


COPY_OF = re.compile(r"^This is `(?P<path>[\w./-]+)`:\s*$")


def copy_of(example: Example) -> Path | None:
    """The repository file a block says it is (prose "This is `PATH`:" right before it)."""
    m = COPY_OF.match(example.lead.strip())
    return ROOT / m.group("path") if m else None


# -- printed output ----------------------------------------------------------------------------

ARROW = re.compile(r"#\s*->\s?(?P<text>.*)$")


def arrow_lines(code: str) -> list[str]:
    """The ``# -> text`` comments of a Python example, in order."""
    return [m.group("text").rstrip() for line in code.splitlines()
            if (m := ARROW.search(line))]


_RULE = re.compile(r"([━─═]){2,}")


def _plain(line: str) -> str:
    """A table border compares equal whatever its columns' widths."""
    return _RULE.sub(r"\1", line)


def _line_pattern(expected: str) -> re.Pattern[str]:
    parts = [re.escape(p) for p in re.split(r"\s+", _plain(expected).strip())]
    text = r"\s+".join(parts).replace(re.escape("..."), ".*")
    return re.compile(rf"^\s*{text}\s*$")


_TABLE_CHARS = " \t│┃|"


def missing_lines(expected: list[str], actual: str) -> list[str]:
    """The expected lines not found, in order, among the actual output's lines: whitespace
    runs and table borders compare equal, ``...`` matches any text, and a line of only ``...``
    (table borders allowed) matches any lines."""
    lines = actual.splitlines()
    pos = 0
    missing: list[str] = []
    for want in expected:
        if want.strip(_TABLE_CHARS) in ("", "..."):
            continue
        pattern = _line_pattern(want)
        for k in range(pos, len(lines)):
            if pattern.match(_plain(lines[k])):
                pos = k + 1
                break
        else:
            missing.append(want)
    return missing


# -- shell --------------------------------------------------------------------------------------

@dataclass
class Command:
    text: str  # the command as written (continuations joined)
    output: list[str]  # the lines a console block shows after it
    exit_code: int = 0  # `# exit N` at the end of the command says it exits N


EXIT = re.compile(r"#\s*exit\s+(?P<code>\d+)\s*$")


def commands(example: Example) -> list[Command]:
    """The commands of a shell block. In a ``console`` block, commands start with ``$ `` and
    the lines up to the next ``$ `` are their output; in other blocks every line is one."""
    result: list[Command] = []
    lines = example.code.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if example.console and not line.startswith("$ "):
            if result:
                result[-1].output.append(line)
            i += 1
            continue
        text = line[2:] if example.console else line
        while text.rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
            text = text.rstrip()[:-1] + " " + lines[i].strip()
        i += 1
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        code = 0
        if m := EXIT.search(text):
            code = int(m.group("code"))
        result.append(Command(text, [], code))
    return result


def shell_script(example: Example) -> str:
    """The block as a shell script (console prompts and output removed)."""
    return "\n".join(c.text for c in commands(example)) + "\n"
