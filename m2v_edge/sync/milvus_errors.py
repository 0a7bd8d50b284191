"""Which pymilvus failures are worth retrying: `MilvusUnavailableError` (no answer, a server restarting, a collection
dropped meanwhile), `MilvusRowError` (a write's rows refused for what they hold) or `MilvusSyncError` (it will not get
better by itself: credentials, permissions, input errors outside a write)."""

from __future__ import annotations

from typing import Any

from m2v_edge.errors import MilvusRowError, MilvusSyncError, MilvusUnavailableError

_FATAL_WORDS = ("unauthenticated", "permission denied", "authentication", "privilege")
_TRANSIENT_WORDS = ("not ready", "unavailable", "not serviceable", "timeout", "timed out", "deadline", "rate limit",
                    "quota", "no available", "not healthy", "stopping", "abnormal", "retry", "busy", "connect")


def describe(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    message = " ".join(str(message).split())
    return message if len(message) <= 300 else message[:297] + "..."


def classify(pm: Any, exc: BaseException, rows: bool) -> tuple[type[MilvusSyncError], bool]:
    """The error class for a failed call, and whether a `MilvusRowError` is certain (an explicit input error)."""
    errors = pm.exceptions
    message = describe(exc).lower()
    if isinstance(exc, errors.ConnectionConfigException) or any(word in message for word in _FATAL_WORDS):
        return MilvusSyncError, False
    client_side = (errors.ParamError, errors.DataTypeNotMatchException, errors.DataNotMatchException,
                   errors.PrimaryKeyException)
    if isinstance(exc, client_side):
        return (MilvusRowError, True) if rows else (MilvusSyncError, False)
    code = getattr(exc, "code", None)
    if (not isinstance(exc, errors.MilvusException) or not isinstance(code, int)  # no answer from a server
            or isinstance(exc, (errors.ConnectError, errors.MilvusUnavailableException))):
        return MilvusUnavailableError, False
    if code == errors.ErrorCode.COLLECTION_NOT_FOUND or "not found" in message or "does not exist" in message:
        return MilvusUnavailableError, False  # dropped meanwhile: reconnecting creates it again
    if (code in (2, errors.ErrorCode.RATE_LIMIT, errors.ErrorCode.FORCE_DENY) or exc.retriable
            or any(word in message for word in _TRANSIENT_WORDS)):
        return MilvusUnavailableError, False
    if rows:
        return MilvusRowError, bool(exc.is_input_error)
    return (MilvusSyncError if exc.is_input_error else MilvusUnavailableError), False
