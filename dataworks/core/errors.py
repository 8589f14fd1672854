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

from dataworks.errors import DataWorksError, RunFailed, SettingsError

DUPLICATE_KEY = 11000
DOCUMENT_VALIDATION_FAILURE = 121
BSON_OBJECT_TOO_LARGE = 10334
COSMOS_REQUEST_RATE_TOO_LARGE = 16500
HTTP_TOO_MANY_REQUESTS = 429
EXCEEDED_TIME_LIMIT = 50
UNAUTHORIZED = 13
AUTHENTICATION_FAILED = 18
NAMESPACE_NOT_FOUND = 26
CURSOR_NOT_FOUND = 43

# Server codes that mean "try again" (network-ish, elections, interruptions).
TRANSIENT_CODES = frozenset(
    {6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, CURSOR_NOT_FOUND}
)
# Labels the server or driver attaches to errors that are safe to retry.
TRANSIENT_LABELS = ("RetryableWriteError", "ResetPool", "SystemOverloadedError", "RetryableError")
# 16500 / 429: over the provisioned RU/s. 50 (ExceededTimeLimit): what Cosmos DB answers
# instead once server-side retry is on and its own retries ran out after 60 s; on MongoDB a
# busy server past maxTimeMS. Either way: slow down, not an outage.
THROTTLE_CODES = frozenset({COSMOS_REQUEST_RATE_TOO_LARGE, HTTP_TOO_MANY_REQUESTS,
                            EXCEEDED_TIME_LIMIT})
REJECT_CODES = frozenset({DOCUMENT_VALIDATION_FAILURE, BSON_OBJECT_TOO_LARGE, 2, 17419, 17280})
FATAL_CODES = frozenset({UNAUTHORIZED, AUTHENTICATION_FAILED, NAMESPACE_NOT_FOUND})

_RETRY_AFTER = re.compile(r"RetryAfterMs=(\d+)")
_THROTTLE_WORDS = ("Request rate is large", "RequestRateTooLarge", "TooManyRequests")


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
    if code in THROTTLE_CODES or any(word in (message or "") for word in _THROTTLE_WORDS):
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
    if isinstance(exc, ExecutionTimeout):
        return Classified(ErrorKind.THROTTLED, getattr(exc, "code", None) or EXCEEDED_TIME_LIMIT,
                          message, retry_after_seconds(message))
    if isinstance(exc, WTimeoutError):
        return Classified(ErrorKind.TRANSIENT, getattr(exc, "code", None), message)
    if isinstance(exc, BulkWriteError):
        return _classify_bulk(exc)
    if isinstance(exc, OperationFailure):
        verdict = classify_code(exc.code, message)
        if verdict.kind is ErrorKind.FATAL and _has_transient_label(exc):
            return Classified(ErrorKind.TRANSIENT, exc.code, message)
        return verdict
    if isinstance(exc, PyMongoError) and _has_transient_label(exc):
        return Classified(ErrorKind.TRANSIENT, None, message)
    return Classified(ErrorKind.FATAL, None, message)


def _has_transient_label(exc: PyMongoError) -> bool:
    return any(exc.has_error_label(label) for label in TRANSIENT_LABELS)


def _classify_bulk(exc: BulkWriteError) -> Classified:
    """A whole failed bulk write, for callers that do not split it: its worst document."""
    errors = (exc.details or {}).get("writeErrors") or []
    verdicts = [classify_code(e.get("code"), e.get("errmsg", "")) for e in errors]
    for kind in (ErrorKind.FATAL, ErrorKind.REJECTED, ErrorKind.THROTTLED, ErrorKind.TRANSIENT):
        for verdict in verdicts:
            if verdict.kind is kind:
                return verdict
    if verdicts:
        return verdicts[0]
    if (exc.details or {}).get("writeConcernErrors"):  # applied, maybe rolled back: re-send
        return Classified(ErrorKind.TRANSIENT, exc.code, server_words(exc))
    return Classified(ErrorKind.TRANSIENT if _has_transient_label(exc) else ErrorKind.FATAL,
                      exc.code, str(exc))


def server_words(exc: BaseException) -> str:
    """The server's own message, without PyMongo's `full error: {...}` dump."""
    if isinstance(exc, OperationFailure) and not isinstance(exc, BulkWriteError):
        details = exc.details or {}
        text = str(details.get("errmsg") or exc).split(", full error:")[0]
    else:
        text = str(exc).split(", full error:")[0].split(" (configured timeouts")[0]
    return " ".join(text.split())


def fatal_error(verdict: Classified, *, side: str, setting: str) -> DataWorksError:
    """One clear error for a failure retrying cannot fix. `side` names the server ("target"),
    `setting` the connection-string setting the user would check."""
    message = " ".join(verdict.message.split(", full error:")[0].split())  # one line
    if verdict.code == AUTHENTICATION_FAILED:
        return SettingsError(
            f"the {side} rejected the credentials: {message}",
            hint=f"check the user, password and authMechanism in {setting}",
        )
    if verdict.code == UNAUTHORIZED and "requires authentication" in message:
        return SettingsError(
            f"the {side} requires a login, and {setting} gives none",
            hint="put the user and password in it: USER:PASSWORD@ before the host, "
            "URL-encoded",
        )
    if verdict.code == UNAUTHORIZED:
        return SettingsError(
            f"the {side} refused the operation: {message}",
            hint=f"give the user in {setting} the roles it needs (readWrite on the target, "
            "read on the source), then run the same command again to resume",
        )
    if verdict.code == NAMESPACE_NOT_FOUND:
        return RunFailed(
            f"a collection on the {side} disappeared during the run: {message}",
            hint="check the database and collection names; run the same command again to resume",
        )
    code = f" (code {verdict.code})" if verdict.code is not None else ""
    return RunFailed(
        f"the {side} failed{code}: {message}",
        hint="checkpoints were saved; fix the cause and run the same command again to resume",
    )


@dataclass
class BulkOutcome:
    """What one failed `insert_many` did, per document index of the batch sent."""

    written: int = 0
    duplicates: list[int] = field(default_factory=list)
    # the server's write error for each duplicate (keyPattern / keyValue / errmsg name the
    # index that clashed, where the server says so): conflicts.py classifies them
    duplicate_errors: dict[int, dict[str, Any]] = field(default_factory=dict)
    retry: list[int] = field(default_factory=list)
    rejected: list[tuple[int, Classified]] = field(default_factory=list)
    fatal: Classified | None = None
    retry_after_s: float | None = None
    throttled: bool = False
    write_concern: str | None = None  # the first writeConcernError's message, if any


def split_bulk_error(exc: BulkWriteError, batch_len: int) -> BulkOutcome:
    """Sort the documents of an unordered `insert_many` by what happened to them.

    Documents not named in `writeErrors` were written (whatever count the reply gives). Cosmos DB can apply part of a
    throttled batch; only the indices it reports failed are re-sent.

    A `writeConcernError` (say w:majority not reached before a failover) means the writes
    were applied on one node but may be rolled back: none of them counts as written, they
    are all re-sent, and the ones that did survive come back as duplicates ("already
    present"), so nothing is lost and nothing is doubled.
    """
    details: dict[str, Any] = exc.details or {}
    outcome = BulkOutcome()
    failed = 0
    concern_failed = bool(details.get("writeConcernErrors"))
    for error in details.get("writeErrors", []):
        failed += 1
        verdict = classify_code(error.get("code"), error.get("errmsg", ""))
        index = int(error["index"])
        if verdict.kind is ErrorKind.DUPLICATE:
            outcome.duplicates.append(index)
            outcome.duplicate_errors[index] = error
        elif verdict.retryable:
            outcome.retry.append(index)
            outcome.throttled |= verdict.kind is ErrorKind.THROTTLED
            if verdict.retry_after_s is not None:
                outcome.retry_after_s = max(outcome.retry_after_s or 0.0, verdict.retry_after_s)
        elif verdict.kind is ErrorKind.REJECTED:
            outcome.rejected.append((index, verdict))
        else:
            outcome.fatal = outcome.fatal or verdict
    # At most the documents no error names, whatever count the reply gives: some servers
    # count failed documents in `n` (mongo-java-server reported 20 inserted of which 10 were
    # duplicates).
    outcome.written = min(int(details.get("nInserted", batch_len - failed)), batch_len - failed)
    if concern_failed and outcome.fatal is None:
        named = {*outcome.duplicates, *outcome.retry, *(i for i, _ in outcome.rejected)}
        outcome.retry = sorted({*outcome.retry, *(i for i in range(batch_len) if i not in named)})
        outcome.written = 0
        outcome.write_concern = details["writeConcernErrors"][0].get("errmsg", "")
    return outcome
