"""One call of one provider, with its timeout: whatever happens becomes an ``Outcome``.

The adapter answers with a reply or a ``ProviderError``; a timeout, a connection error or an
adapter bug are mapped here, so the walk never sees a vendor exception. Cancellation (the
caller gave up, or the call lost a hedge race) is the one thing that propagates.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ProviderError
from ..outcome import Outcome
from ..secrets import redact

if TYPE_CHECKING:
    from ..provider import Provider, ProviderReply
    from ..request import ImageRequest
    from ..validators import Validator

log = logging.getLogger("fallback_chain")


@dataclass(slots=True)
class Called:
    """How a call ended. ``partial`` holds images a failed call still delivered (and paid)."""

    outcome: Outcome
    reply: ProviderReply | None = None
    error: ProviderError | None = None
    message: str | None = None
    partial: ProviderReply | None = None


async def call_provider(provider: Provider, request: ImageRequest, timeout: float) -> Called:
    try:
        async with asyncio.timeout(timeout):
            reply = await provider.generate(request, timeout=timeout)
    except ProviderError as exc:
        # never re-raised: drop the frames (and the vendor exception chained to it) so a
        # failed attempt leaves no reference cycle for the garbage collector
        exc.__traceback__ = exc.__context__ = exc.__cause__ = None
        partial = exc.partial if exc.partial is not None and exc.partial.images else None
        if partial is not None:
            _drop_surplus(partial, request.n)
        return Called(exc.outcome, None, exc, exc.message, partial)
    except TimeoutError:
        return Called(Outcome.TIMEOUT, message=f"no answer within {timeout:.3g}s")
    except OSError as exc:
        return Called(Outcome.CONNECTION_ERROR,
                      message=redact(f"{type(exc).__name__}: {exc}")[:500])
    except Exception as exc:  # an adapter bug must not take the chain down
        log.warning("provider %s raised %s instead of ProviderError", provider.name,
                    type(exc).__name__, exc_info=True)
        return Called(Outcome.MALFORMED_RESPONSE,
                      message=redact(f"adapter raised {type(exc).__name__}: {exc}")[:500])
    if len(reply.images) < request.n:
        return Called(Outcome.MALFORMED_RESPONSE, reply,
                      message=f"asked for {request.n} image(s), got {len(reply.images)}")
    return Called(Outcome.SUCCESS, reply, message=_drop_surplus(reply, request.n))


async def validated(called: Called, validators: tuple[Validator, ...],
                    request: ImageRequest) -> Called:
    """A successful call whose images a validator rejects becomes ``rejected`` (the reply,
    and so the vendor's bill, is kept; the images are not delivered)."""
    if not validators or called.outcome is not Outcome.SUCCESS or called.reply is None:
        return called
    from ..validators import check_images

    reason = await check_images(validators, called.reply.images, request)
    if reason is None:
        return called
    return Called(Outcome.REJECTED, called.reply, message=f"rejected: {reason}"[:500])


def _drop_surplus(reply: ProviderReply, n: int) -> str | None:
    """Keep the first ``n`` images of an answer that has more (a vendor that sends 3000 for
    one asked is never delivered, written or cached beyond ``n``); the surplus is recorded in
    the attempt's message and in ``reply.extra["surplus_images"]``."""
    extra = reply.extra.get("surplus_images")  # an adapter that did not even read them
    surplus = max(len(reply.images) - n, 0) + (extra if isinstance(extra, int) else 0)
    if surplus <= 0:
        return None
    del reply.images[n:]
    reply.extra["surplus_images"] = surplus
    return (f"asked for {n} image(s), the answer had {n + surplus}: kept {n}, "
            f"dropped {surplus}")
