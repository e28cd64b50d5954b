"""Progress while a batch runs: a live Rich bar on a terminal (done and failed, spend so far,
deliveries per provider), plain status lines otherwise, or nothing. Everything goes to stderr
so stdout keeps only the summary (or its JSON).

The engine calls ``update`` after every item and attempt; reporters throttle themselves.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, Protocol, TextIO

if TYPE_CHECKING:
    from .stats import BatchStats

MAX_MESSAGES = 20


class Reporter(Protocol):
    def start(self, stats: BatchStats) -> None: ...
    def update(self, stats: BatchStats) -> None: ...
    def message(self, text: str) -> None: ...
    def stop(self, stats: BatchStats) -> None: ...


def status_line(stats: BatchStats) -> str:
    per = ", ".join(f"{name} {p.delivered}" for name, p in sorted(stats.providers.items())
                    if p.delivered)
    bits = [f"{stats.delivered} delivered", f"{stats.failed + stats.invalid_rows} failed"]
    if stats.skipped:
        bits.append(f"{stats.skipped} already done")
    bits.append(f"${stats.cost_usd:,.4f} spent")
    limited = stats.rate_limited()
    if limited:
        bits.append(f"{limited} rate-limited")
    return " · ".join(bits) + (f" · {per}" if per else "")


class NullReporter:
    def start(self, stats: BatchStats) -> None:
        pass

    def update(self, stats: BatchStats) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def stop(self, stats: BatchStats) -> None:
        pass


class PlainReporter:
    """A status line every ``every_s`` seconds, and the first ``MAX_MESSAGES`` messages."""

    def __init__(self, stream: TextIO | None = None, every_s: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self._next = 0.0
        self._messages = 0
        self._started = time.monotonic()

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def start(self, stats: BatchStats) -> None:
        self._started = time.monotonic()
        self._next = self._started + self.every_s
        total = f"{stats.total:,} rows" if stats.total is not None else "rows"
        self._print(f"batch: reading {total}")

    def update(self, stats: BatchStats) -> None:
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.every_s
            self._print(self._line(stats, now))

    def _line(self, stats: BatchStats, now: float) -> str:
        of = f"/{stats.total:,}" if stats.total is not None else ""
        return f"[{now - self._started:7.1f}s] {stats.finished:,}{of} · {status_line(stats)}"

    def message(self, text: str) -> None:
        self._messages += 1
        if self._messages <= MAX_MESSAGES:
            self._print(text)
        elif self._messages == MAX_MESSAGES + 1:
            self._print("(further problems are listed in the failures file only)")

    def stop(self, stats: BatchStats) -> None:
        self._print(self._line(stats, time.monotonic()))


class _Status:
    """The line under the bar: a renderable whose text the reporter replaces."""

    def __init__(self) -> None:
        self.text = "starting"

    def __rich__(self) -> Any:
        from rich.text import Text

        return Text(self.text, overflow="ellipsis", no_wrap=True)


class RichReporter:
    """A live progress bar on stderr with a status line under it (done and failed, spend so
    far, deliveries per provider), refreshed by Rich's own thread 4 times a second."""

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console, Group
        from rich.live import Live
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = console or Console(stderr=True)
        self.progress = Progress(SpinnerColumn(), TextColumn("[bold]batch"),
                                 BarColumn(bar_width=40), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TimeRemainingColumn(),
                                 console=self.console)
        self.status = _Status()
        self.live = Live(Group(self.progress, self.status), console=self.console,
                         refresh_per_second=4, transient=False)
        self._task: Any = None
        self._messages = 0
        self._last = 0.0

    def start(self, stats: BatchStats) -> None:
        self._task = self.progress.add_task("batch", total=stats.total)
        self.live.start()

    def update(self, stats: BatchStats) -> None:
        now = time.monotonic()
        if now - self._last < 0.1:
            return
        self._last = now
        self._set(stats)

    def _set(self, stats: BatchStats) -> None:
        total = stats.total
        if total is not None and stats.finished > total:
            total = stats.finished
        self.progress.update(self._task, completed=stats.finished, total=total)
        self.status.text = status_line(stats)

    def message(self, text: str) -> None:
        self._messages += 1
        if self._messages <= MAX_MESSAGES:
            self.console.print(text, markup=False, highlight=False)
        elif self._messages == MAX_MESSAGES + 1:
            self.console.print("(further problems are listed in the failures file only)")

    def stop(self, stats: BatchStats) -> None:
        if stats.total is None:
            self.progress.update(self._task, total=stats.finished)
        self._set(stats)
        self.live.stop()


def make_reporter(mode: str = "auto", stream: TextIO | None = None) -> Reporter:
    """``auto``: Rich on a terminal, plain lines otherwise; or ``rich``, ``plain``, ``none``."""
    stream = stream or sys.stderr
    if mode == "auto":
        mode = "rich" if stream.isatty() else "plain"
    if mode == "rich":
        return RichReporter()
    if mode == "plain":
        return PlainReporter(stream)
    return NullReporter()
