"""The one error the simulator raises for a bad experiment, naming where the problem is."""

from __future__ import annotations


class ExperimentError(ValueError):
    """An experiment file (or a profile, workload or configuration built in code) is invalid.

    The message names the file when there is one and the key path of each bad value, e.g.
    ``experiment.toml:12: providers.gemini.latency.p95: must be >= p50 (got 1.0 < 2.0)``.
    """

    def __init__(self, where: str, problem: str, *, source: str | None = None,
                 line: int | None = None, more: tuple[str, ...] = (),
                 loc: tuple[str | int, ...] | None = None) -> None:
        self.where = where
        self.loc = loc  # the key path in the file, when ``where`` names it differently
        self.problem = problem
        self.source = source
        self.line = line
        self.more = more  # further problems found at the same time, already rendered
        prefix = f"{source}:{line}: " if source and line else f"{source}: " if source else ""
        first = f"{prefix}{where}: {problem}" if where else f"{prefix}{problem}"
        super().__init__("\n".join((first, *more)))

    def in_file(self, source: str, line: int | None = None) -> ExperimentError:
        """The same error, attributed to the file ``source`` (and ``line``, when known)."""
        return ExperimentError(self.where, self.problem, source=source,
                               line=line or self.line, more=self.more, loc=self.loc)
