"""What a vendor batch API client offers (OpenAI Batches, Gemini Batch Mode), for
``fallback-chain batch --vendor-batch`` (``fallback_chain.batch.vendor``).

An adapter class names its client in ``batch_api = "module:Class"``; :func:`client_for` builds
it from a provider instance (same key, base URL and model). A client turns requests into one
vendor job (``submit``), finds a job submitted under a label (``find``: how a run killed
between submitting and recording the job id re-attaches instead of paying twice), reads its
state (``status``), cancels it, and reads each item's answer (``results``) as the adapter's own
``ProviderReply`` or ``ProviderError``, with the cost at the vendor's standard rates (the
batch layer applies the batch price).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING, Any, Literal

from fallback_chain.errors import ProviderError
from fallback_chain.outcome import Outcome

if TYPE_CHECKING:
    import httpx

    from fallback_chain.provider import Provider, ProviderReply
    from fallback_chain.request import ImageRequest

JobState = Literal["running", "completed", "failed", "expired", "cancelling", "cancelled"]
#: States a job does not leave.
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "expired", "cancelled"})
ItemStatus = Literal["delivered", "refused", "error", "expired", "cancelled", "missing"]


@dataclass(frozen=True, slots=True)
class JobStatus:
    """A job's state as the vendor reports it (``raw``: the vendor's own object)."""

    state: JobState
    error: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL


@dataclass(frozen=True, slots=True)
class ItemResult:
    """One item's answer: ``reply`` when delivered, else ``error`` (``content_policy`` for a
    refusal) and ``status`` saying why it was not delivered."""

    custom_id: str
    status: ItemStatus
    reply: ProviderReply | None = None
    error: ProviderError | None = None


class BatchClient(ABC):
    """Base of the vendor batch clients: an ``httpx.AsyncClient`` with the provider's key."""

    vendor: str = ""
    #: The most requests one job takes, and the most bytes of requests.
    max_items: int = 50_000
    max_bytes: int = 200 * 1024 * 1024
    #: The most images one request of the job may ask for (``None``: the model's own limit).
    max_n: int | None = None

    def __init__(self, provider: Provider, *, transport: httpx.AsyncBaseTransport | None = None,
                 timeout_s: float = 60.0) -> None:
        self.provider = provider
        self.model = provider.model
        self._transport = transport
        self._timeout_s = timeout_s
        self._http: httpx.AsyncClient | None = None

    # ------------------------------------------------------------------ the contract

    @classmethod
    def batch_reason(cls, request: ImageRequest) -> str | None:
        """Why no job of this vendor takes ``request``, whatever the model (``--dry-run``
        asks this without building a provider)."""
        if request.images or request.mask is not None:
            return "edits are not sent to the vendor batch"
        if cls.max_n is not None and request.n > cls.max_n:
            return f"{cls.vendor} batch requests make {cls.max_n} image(s) each (n={request.n})"
        return None

    def unsupported_reason(self, request: ImageRequest) -> str | None:
        """Why ``request`` cannot go into a batch job (``None``: it can)."""
        return self.batch_reason(request) or self.provider.unsupported_reason(request)

    @abstractmethod
    def line(self, custom_id: str, request: ImageRequest) -> dict[str, Any]:
        """The job's entry for one request (its size counts against ``max_bytes``)."""

    @abstractmethod
    async def find(self, label: str) -> str | None:
        """The id of a job submitted under ``label``, if the vendor has one."""

    @abstractmethod
    async def submit(self, label: str, lines: list[dict[str, Any]]) -> str:
        """Submit one job of ``lines`` under ``label``; its id."""

    @abstractmethod
    async def status(self, job_id: str) -> JobStatus: ...

    @abstractmethod
    async def cancel(self, job_id: str) -> None: ...

    @abstractmethod
    async def results(self, job_id: str, status: JobStatus,
                      requests: dict[str, ImageRequest]) -> list[ItemResult]:
        """Every answer the job has (``requests``: the job's requests by custom id)."""

    # ------------------------------------------------------------------ plumbing

    @abstractmethod
    def _base_url(self) -> str: ...

    @abstractmethod
    def _headers(self) -> dict[str, str]: ...

    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            import httpx

            self._http = httpx.AsyncClient(base_url=self._base_url(), headers=self._headers(),
                                           timeout=self._timeout_s, transport=self._transport,
                                           follow_redirects=False)
        return self._http

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API call; its JSON (bytes for a non-JSON answer). An error answer or a
        failed connection raises ``ProviderError``."""
        import httpx

        try:
            response = await self.http().request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ProviderError(Outcome.CONNECTION_ERROR,
                                f"{self.vendor} batch API: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 400:
            raise ProviderError(_outcome(response.status_code),
                                f"{self.vendor} batch API: {method} {path} answered "
                                f"{response.status_code}: {response.text[:300]}",
                                status_code=response.status_code)
        if "json" in response.headers.get("content-type", ""):
            try:
                return response.json()
            except ValueError:
                raise ProviderError(Outcome.MALFORMED_RESPONSE,
                                    f"{self.vendor} batch API: {path}: not JSON",
                                    status_code=response.status_code) from None
        return response.content

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None


def client_class(adapter: type[Provider]) -> type[BatchClient] | None:
    """The batch client class an adapter class names (``None``: its vendor has none)."""
    spec = getattr(adapter, "batch_api", None)
    if not spec:
        return None
    module, _, name = str(spec).partition(":")
    cls: type[BatchClient] = getattr(import_module(module), name)
    return cls


def client_for(provider: Provider, **kwargs: Any) -> BatchClient | None:
    """The batch client of ``provider``'s vendor (``None`` when it has no batch API)."""
    cls = client_class(type(provider))
    return None if cls is None else cls(provider, **kwargs)


def line_size(line: dict[str, Any]) -> int:
    return len(json.dumps(line, separators=(",", ":"))) + 1


def _outcome(status: int) -> Outcome:
    from fallback_chain.outcome import outcome_for_status

    return outcome_for_status(status)
