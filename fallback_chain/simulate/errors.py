"""The one error the simulator raises for a bad experiment, naming where the problem is."""

from __future__ import annotations


class ExperimentError(ValueError):
    """An experiment file (or a profile, workload or configuration built in code) is invalid.

    The message names the file when there is one and the key path of each bad value, e.g.
    ``experiment.toml: providers.gemini.latency.p95: must be >= p50 (got 1.0 < 2.0)``.
    """

    def __init__(self, where: str, problem: str, *, source: str | None = None) -> None:
        self.where = where
        self.problem = problem
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__(f"{prefix}{where}: {problem}" if where else f"{prefix}{problem}")

    def in_file(self, source: str) -> ExperimentError:
        """The same error, attributed to the file ``source``."""
        return ExperimentError(self.where, self.problem, source=source)
