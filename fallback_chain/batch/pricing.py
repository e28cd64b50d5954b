"""``--dry-run``: read and validate the whole input (streamed, like a real run), leave out items
the output already has, and price the rest with :func:`fallback_chain.cost.estimate_batch`:
best case, expected under given failure rates, worst case. No provider is called and nothing
is written."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from .engine import detect_format
from .index import BatchIndex
from .items import RowError
from .items_stream import RowRewrite, iter_items
from .reader import open_input

if TYPE_CHECKING:
    from ..chain import Chain
    from ..cost.batch import BatchEstimate, ChainStep
    from ..cost.catalogue import PriceCatalogue
    from ..request import ImageRequest

def chain_steps(chain: Chain) -> list[ChainStep]:
    """The chain's providers as the price catalogue names them (vendor, model): the vendor
    id the adapter class declares (the provider's name for one of no registered vendor)."""
    from ..cost.batch import ChainStep
    from ..registry import vendor_of

    steps = []
    for p in chain.providers:
        steps.append(ChainStep(vendor_of(p) or p.name, p.model))
    return steps


@dataclass(frozen=True, slots=True)
class DryRunReport:
    input: str
    rows: int
    valid: int
    invalid: int
    already_delivered: int
    priced: int
    errors: list[str]
    estimate: BatchEstimate
    providers: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["estimate"] = self.estimate.to_dict()
        return out


def dry_run(steps: Sequence[ChainStep | tuple[str, str | None]], source: str, *,
            out: str | None = None, input_format: str | None = None,
            input_options: dict[str, Any] | None = None,
            storage_options: dict[str, Any] | None = None,
            failure_rates: Mapping[str, float] | None = None, failures_billed: float = 0.0,
            catalogue: PriceCatalogue | None = None, max_errors: int = 20,
            index_dir: str | None = None, rewrite: RowRewrite | None = None) -> DryRunReport:
    """Validate ``source`` and price what a run into ``out`` would generate (see module)."""
    from ..cost.batch import ChainStep, estimate_batch

    fmt = detect_format(source, input_format, input_options)
    counts = {"rows": 0, "invalid": 0, "done": 0, "priced": 0}
    errors: list[str] = []
    with BatchIndex(index_dir) as index:
        if out is not None:
            _load_delivered(out, storage_options, index)
        with open_input(source, input_options) as fh:
            _, items = iter_items(fh, fmt, source, index, rewrite=rewrite)

            def requests() -> Iterator[ImageRequest]:
                for entry in items:
                    counts["rows"] += 1
                    if isinstance(entry, RowError):
                        counts["invalid"] += 1
                        if len(errors) < max_errors:
                            errors.append(str(entry))
                        continue
                    state = index.state(entry.id)
                    if state is not None and state.status == "delivered":
                        counts["done"] += 1
                        continue
                    counts["priced"] += 1
                    yield entry.request

            estimate: BatchEstimate = estimate_batch(
                steps, requests(), failure_rates=failure_rates,
                failures_billed=failures_billed, catalogue=catalogue)
    labels = [(s if isinstance(s, ChainStep) else ChainStep(*s)).label for s in steps]
    return DryRunReport(source, counts["rows"], counts["rows"] - counts["invalid"],
                        counts["invalid"], counts["done"], counts["priced"], errors, estimate,
                        labels)


def _load_delivered(out: str, storage_options: dict[str, Any] | None,
                    index: BatchIndex) -> None:
    from .manifest import Manifest
    from .storage import Storage

    storage = Storage(out, storage_options, threads=1)
    try:
        index.load(Manifest(storage).records())
    finally:
        storage.close()
