"""Vertex AI's failures mapped to the core's types: the Gemini table
(:mod:`fallback_chain.providers.gemini.parse`, same ``google.rpc`` error bodies) plus what only
Vertex sends. Public examples in ``tests/corpus/vertex/``.

===  ==============================================================  =======================
 #   Vertex answer                                                   outcome
===  ==============================================================  =======================
 1   google-auth could not find or refresh credentials               auth_error (long
     (``DefaultCredentialsError``: no ADC; ``RefreshError``: a        cooldown): nothing was
     revoked key, a wrong scope), raised before any request          sent
 2   google-auth could not reach the token endpoint                  connection_error
     (``TransportError``)
 3   429 "Quota exceeded for aiplatform.googleapis.com/..._per_day_  quota_exhausted (long):
     ..." (a per-day quota)                                          waiting does not help
 4   429 ``RESOURCE_EXHAUSTED`` otherwise ("Resource exhausted.      rate_limited (Vertex
     Please try again later.", per-minute quotas, dynamic shared     sends no delay: the
     quota)                                                          default cooldown)
 5   everything else as for Gemini: 401 ``UNAUTHENTICATED`` / 403 ``PERMISSION_DENIED``
     (API disabled, no IAM permission) auth_error; 400 ``FAILED_PRECONDITION`` (billing)
     auth_error; 404 "Publisher Model ... not found" not_found; 5xx server_error; 200 with a
     safety ``finishReason`` content_policy (stop)
===  ==============================================================  =======================
"""

from __future__ import annotations

import re

from fallback_chain.errors import ProviderError
from fallback_chain.outcome import Outcome

from ..gemini.parse import error_from_exception as gemini_error

_PER_DAY = re.compile(r"per[_ ]day|PerDay", re.IGNORECASE)


def error_from_exception(exc: Exception) -> ProviderError:
    """Any exception out of one google-genai call against Vertex AI as a ``ProviderError``."""
    auth = _credentials_error(exc)
    if auth is not None:
        return auth
    err = gemini_error(exc)
    if err.outcome is Outcome.RATE_LIMITED and _PER_DAY.search(err.message):
        return ProviderError(Outcome.QUOTA_EXHAUSTED, err.message, status_code=err.status_code,
                             provider_code=err.provider_code, details=err.details)
    return err


def _credentials_error(exc: Exception) -> ProviderError | None:
    """google-auth's own exceptions (raised while getting a token, before the request)."""
    from google.auth import exceptions

    if isinstance(exc, exceptions.DefaultCredentialsError):
        return ProviderError(Outcome.AUTH_ERROR, f"no Google Cloud credentials: {exc}")
    if isinstance(exc, exceptions.RefreshError):
        return ProviderError(Outcome.AUTH_ERROR, f"the credentials could not be refreshed: "
                                                 f"{exc}")
    if isinstance(exc, exceptions.TransportError):
        return ProviderError(Outcome.CONNECTION_ERROR, f"could not reach Google's token "
                                                       f"endpoint: {exc}")
    if isinstance(exc, exceptions.GoogleAuthError):
        return ProviderError(Outcome.AUTH_ERROR, f"{type(exc).__name__}: {exc}")
    return None
