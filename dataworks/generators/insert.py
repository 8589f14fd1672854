"""Insert one pre-encoded batch: unordered, re-sending only what the server says failed.

Duplicate keys mean "already written" (a resumed or retried batch); throttled or transient
failures are retried with backoff (honouring Cosmos DB's RetryAfterMs) while holding a permit
of the adaptive limiter only during the insert itself; anything else stops the run, because
a generator whose documents the server rejects needs fixing, not skipping.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bson.raw_bson import RawBSONDocument
from pymongo.errors import BulkWriteError

from dataworks.core.endpoints import GENERATION_SETTING
from dataworks.core.errors import Classified, ErrorKind, classify, fatal_error, split_bulk_error
from dataworks.core.retry import RetryPolicy
from dataworks.core.throttle import AdaptiveLimiter, Unlimited
from dataworks.errors import RunFailed
from dataworks.monitoring.metrics import RunMetrics


async def insert_batch(
    collection: Any,
    docs: list[RawBSONDocument],
    metrics: RunMetrics,
    policy: RetryPolicy,
    limiter: AdaptiveLimiter | Unlimited | None = None,
    *,
    setting: str = GENERATION_SETTING,
) -> None:
    """Insert `docs`, retrying what may pass later; a fatal error names `setting`, where the
    user fixes the target's address (the flag they passed or the setting they set)."""
    pending = docs
    budget = policy.budget(f"insert into {collection.full_name}")
    limiter = limiter or Unlimited()
    while pending:
        async with limiter.permit() as permit:
            try:
                await collection.insert_many(pending, ordered=False)
                metrics.written += len(pending)
                limiter.succeeded()
                return
            except BulkWriteError as exc:
                outcome = split_bulk_error(exc, len(pending))
                metrics.written += outcome.written
                metrics.already_present += len(outcome.duplicates)
                problem = outcome.fatal or (outcome.rejected[0][1] if outcome.rejected else None)
                if problem is not None:
                    metrics.errors += 1
                    raise RunFailed(
                        f"the server refused generated documents in {collection.full_name}: "
                        f"code {problem.code}: {problem.message}",
                        hint="fix the generator or template; run the same command again to continue",
                    ) from None
                if not outcome.retry:
                    return
                if outcome.written or outcome.duplicates:
                    budget.progressed()
                pending = [pending[i] for i in outcome.retry]
                kind = ErrorKind.THROTTLED if outcome.throttled else ErrorKind.TRANSIENT
                verdict = Classified(kind, None, "some documents were not written",
                                     outcome.retry_after_s)
            except Exception as exc:
                verdict = classify(exc)
                if not verdict.retryable:
                    metrics.errors += 1
                    raise fatal_error(verdict, side="target",
                                      setting=setting) from exc
            if verdict.kind is ErrorKind.THROTTLED:
                metrics.throttled += 1
                limiter.throttled(permit)
        delay = budget.next_delay(verdict)
        metrics.retries += 1
        await asyncio.sleep(delay)
