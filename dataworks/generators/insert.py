"""Insert one pre-encoded batch: unordered, re-sending only what the server says failed.

Duplicate keys mean "already written" (a resumed or retried batch); throttled or transient
failures are retried with backoff (honouring Cosmos DB's RetryAfterMs); anything else stops
the run, because a generator whose documents the server rejects needs fixing, not skipping.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bson.raw_bson import RawBSONDocument
from pymongo.errors import BulkWriteError

from dataworks.core.errors import classify, split_bulk_error
from dataworks.core.retry import RetryPolicy
from dataworks.errors import RunFailed
from dataworks.monitoring.metrics import RunMetrics


async def insert_batch(
    collection: Any,
    docs: list[RawBSONDocument],
    metrics: RunMetrics,
    policy: RetryPolicy,
) -> None:
    pending = docs
    started = time.monotonic()
    attempt = 0
    while pending:
        attempt += 1
        suggested: float | None = None
        try:
            await collection.insert_many(pending, ordered=False)
            metrics.written += len(pending)
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
                    hint="fix the generator or template; run again with --resume to continue",
                ) from None
            if not outcome.retry:
                return
            pending = [pending[i] for i in outcome.retry]
            if outcome.throttled:
                metrics.throttled += 1
            suggested = outcome.retry_after_s
        except Exception as exc:  # noqa: BLE001 - classified below
            verdict = classify(exc)
            if not verdict.retryable:
                metrics.errors += 1
                raise RunFailed(
                    f"insert into {collection.full_name} failed: {verdict.message}",
                    hint="run the same command with --resume to continue",
                ) from exc
            if verdict.kind.value == "throttled":
                metrics.throttled += 1
            suggested = verdict.retry_after_s
        elapsed = time.monotonic() - started
        if attempt >= policy.max_attempts or elapsed >= policy.max_seconds:
            raise RunFailed(
                f"insert into {collection.full_name} still failing after {attempt} attempts "
                f"in {elapsed:.0f}s",
                hint="the server may be down or overloaded; run the same command with "
                "--resume to continue",
            )
        metrics.retries += 1
        await asyncio.sleep(policy.delay(attempt, suggested))
