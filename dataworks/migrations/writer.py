"""Insert one batch into the target, exactly: retry what failed, skip what is already there.

`insert_many(ordered=False)`; on a `BulkWriteError` only the documents the server reports as
failed with a retryable error are re-sent (Cosmos DB may apply part of a throttled batch);
duplicate keys count as already present; rejected documents go to the dead-letter file.
Each `insert_many` holds a permit of the adaptive limiter (not the backoff sleep), and tells
it when the server throttled, so concurrency follows what the account can take.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from pymongo.errors import BulkWriteError

from dataworks.core.dead_letter import DeadLetterFile
from dataworks.core.endpoints import TARGET_SETTING
from dataworks.core.errors import Classified, ErrorKind, classify, fatal_error, split_bulk_error
from dataworks.core.retry import RetryPolicy
from dataworks.core.throttle import AdaptiveLimiter, Unlimited
from dataworks.monitoring.metrics import RunMetrics


@dataclass
class WriteOutcome:
    written: int = 0
    already_present: int = 0
    rejected: int = 0


class BatchWriter:
    def __init__(
        self,
        target: Any,
        *,
        policy: RetryPolicy,
        metrics: RunMetrics,
        dead_letter: DeadLetterFile,
        limiter: AdaptiveLimiter | Unlimited | None = None,
    ) -> None:
        self.target = target
        self.policy = policy
        self.metrics = metrics
        self.dead_letter = dead_letter
        self.limiter = limiter or Unlimited()

    async def write(self, documents: list[Any]) -> WriteOutcome:
        outcome = WriteOutcome()
        pending = documents
        budget = self.policy.budget(f"insert into {getattr(self.target, 'full_name', 'target')}")
        while pending:
            async with self.limiter.permit() as permit:
                try:
                    await self.target.insert_many(pending, ordered=False)
                except BulkWriteError as exc:
                    split = split_bulk_error(exc, len(pending))
                    error = None
                except Exception as exc:  # noqa: BLE001 - classified below
                    split, error = None, exc
                else:
                    outcome.written += len(pending)
                    self.limiter.succeeded()
                    return outcome
                verdict = self._verdict(split, error, pending, outcome)
                if verdict.kind is ErrorKind.THROTTLED:
                    self.metrics.throttled += 1
                    self.limiter.throttled(permit)
            if split is not None:
                if split.written or split.duplicates or split.rejected:
                    budget.progressed()
                pending = [pending[i] for i in split.retry]
            if pending:
                delay = budget.next_delay(verdict)
                self.metrics.retries += 1
                await asyncio.sleep(delay)
        return outcome

    def _verdict(self, split: Any, error: BaseException | None, pending: list[Any],
                 outcome: WriteOutcome) -> Classified:
        """Book what a failed attempt did; raise if it cannot be retried."""
        if split is None:
            assert error is not None
            verdict = classify(error)
            if not verdict.retryable:
                self.metrics.errors += 1
                raise fatal_error(verdict, side="target", setting=TARGET_SETTING) from error
            return verdict
        outcome.written += split.written
        outcome.already_present += len(split.duplicates)
        for index, rejected in split.rejected:
            self.dead_letter.add(pending[index], rejected.code, rejected.message)
            outcome.rejected += 1
        if split.fatal is not None:
            self.metrics.errors += 1
            raise fatal_error(split.fatal, side="target", setting=TARGET_SETTING)
        kind = ErrorKind.THROTTLED if split.throttled else ErrorKind.TRANSIENT
        message = (f"the target did not satisfy the write concern: {split.write_concern}"
                   if split.write_concern is not None
                   else "some documents of the batch were not written")
        return Classified(kind, None, message, split.retry_after_s)
