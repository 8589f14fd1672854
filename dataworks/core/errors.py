"""The one seam where PyMongo errors become decisions.

`classify(exc)` answers: retry it (transient / throttled, with the server's suggested delay),
treat it as done (duplicate key), set the document aside (rejected), or stop (fatal).
`split_bulk_error(exc)` does the same per document of a failed `insert_many`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    ConnectionFailure,
    DuplicateKeyError,
    ExecutionTimeout,
    NetworkTimeout,
    NotPrimaryError,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
    WaitQueueTimeoutError,
    WTimeoutError,
)

DUPLICATE_KEY = 11000
DOCUMENT_VALIDATION_FAILURE = 121
BSON_OBJECT_TOO_LARGE = 10334
COSMOS_REQUEST_RATE_TOO_LARGE = 16500
HTTP_TOO_MANY_REQUESTS = 429
EXCEEDED_TIME_LIMIT = 50
UNAUTHORIZED = 13
AUTHENTICATION_FAILED = 18
NAMESPACE_NOT_FOUND = 26

# Server codes that mean "try again" (network-ish, elections, interruptions).
TRANSIENT_CODES = frozenset(
    {6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, EXCEEDED_TIME_LIMIT}
)
THROTTLE_CODES = frozenset({COSMOS_REQUEST_RATE_TOO_LARGE, HTTP_TOO_MANY_REQUESTS})
REJECT_CODES = frozenset({DOCUMENT_VALIDATION_FAILURE, BSON_OBJECT_TOO_LARGE, 2, 17419, 17280})
FATAL_CODES = frozenset({UNAUTHORIZED, AUTHENTICATION_FAILED, NAMESPACE_NOT_FOUND})

_RETRY_AFTER = re.compile(r"RetryAfterMs=(\d+)")


class ErrorKind(Enum):
    TRANSIENT = "transient"
    THROTTLED = "throttled"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    FATAL = "fatal"


@dataclass(frozen=True)
class Classified:
    kind: ErrorKind
    code: int | None
    message: str
    retry_after_s: float | None = None

    @property
    def retryable(self) -> bool:
        return self.kind in (ErrorKind.TRANSIENT, ErrorKind.THROTTLED)


def retry_after_seconds(message: str) -> float | None:
    """Cosmos DB's suggested delay (`RetryAfterMs=N` in the message), if it gave one."""
    match = _RETRY_AFTER.search(message or "")
    return int(match.group(1)) / 1000.0 if match else None


def classify_code(code: int | None, message: str) -> Classified:
    if code in THROTTLE_CODES or "Request rate is large" in (message or ""):
        return Classified(ErrorKind.THROTTLED, code, message, retry_after_seconds(message))
    if code == DUPLICATE_KEY:
        return Classified(ErrorKind.DUPLICATE, code, message)
    if code in TRANSIENT_CODES:
        return Classified(ErrorKind.TRANSIENT, code, message)
    if code in REJECT_CODES:
        return Classified(ErrorKind.REJECTED, code, message)
    return Classified(ErrorKind.FATAL, code, message)


def classify(exc: BaseException) -> Classified:
    message = str(exc)
    if isinstance(exc, DuplicateKeyError):
        return Classified(ErrorKind.DUPLICATE, DUPLICATE_KEY, message)
    if isinstance(exc, ServerSelectionTimeoutError):
        # Nothing answered within the selection timeout: an outage or a wrong address.
        return Classified(ErrorKind.TRANSIENT, None, message)
    if isinstance(
        exc,
        (AutoReconnect, NotPrimaryError, NetworkTimeout, ConnectionFailure, WaitQueueTimeoutError),
    ):
        return Classified(ErrorKind.TRANSIENT, None, message)
    if isinstance(exc, (ExecutionTimeout, WTimeoutError)):
        return Classified(ErrorKind.TRANSIENT, getattr(exc, "code", None), message)
    if isinstance(exc, OperationFailure):
        return classify_code(exc.code, message)
    if isinstance(exc, PyMongoError) and exc.has_error_label("RetryableWriteError"):
        return Classified(ErrorKind.TRANSIENT, None, message)
    return Classified(ErrorKind.FATAL, None, message)


@dataclass
class BulkOutcome:
    """What one failed `insert_many` did, per document index of the batch sent."""

    written: int = 0
    duplicates: list[int] = field(default_factory=list)
    retry: list[int] = field(default_factory=list)
    rejected: list[tuple[int, Classified]] = field(default_factory=list)
    fatal: Classified | None = None
    retry_after_s: float | None = None
    throttled: bool = False


def split_bulk_error(exc: BulkWriteError, batch_len: int) -> BulkOutcome:
    """Sort the documents of an unordered `insert_many` by what happened to them.

    Documents not named in `writeErrors` were written. Cosmos DB can apply part of a
    throttled batch; only the indices it reports failed are re-sent.
    """
    details: dict[str, Any] = exc.details or {}
    outcome = BulkOutcome()
    failed = 0
    for error in details.get("writeErrors", []):
        failed += 1
        verdict = classify_code(error.get("code"), error.get("errmsg", ""))
        index = int(error["index"])
        if verdict.kind is ErrorKind.DUPLICATE:
            outcome.duplicates.append(index)
        elif verdict.retryable:
            outcome.retry.append(index)
            outcome.throttled |= verdict.kind is ErrorKind.THROTTLED
            if verdict.retry_after_s is not None:
                outcome.retry_after_s = max(outcome.retry_after_s or 0.0, verdict.retry_after_s)
        elif verdict.kind is ErrorKind.REJECTED:
            outcome.rejected.append((index, verdict))
        else:
            outcome.fatal = outcome.fatal or verdict
    outcome.written = int(details.get("nInserted", batch_len - failed))
    return outcome
