"""Insert one batch into the target, exactly: retry what failed, skip what is already there.

`insert_many(ordered=False)`; on a `BulkWriteError` only the documents the server reports as
failed with a retryable error are re-sent (Cosmos DB may apply part of a throttled batch);
duplicate keys count as already present; rejected documents go to the dead-letter file.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from pymongo.errors import BulkWriteError

from dataworks.core.dead_letter import DeadLetterFile
from dataworks.core.errors import AUTHENTICATION_FAILED, UNAUTHORIZED, classify, split_bulk_error
from dataworks.core.retry import RetryPolicy
from dataworks.errors import RunFailed, SettingsError
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
    ) -> None:
        self.target = target
        self.policy = policy
        self.metrics = metrics
        self.dead_letter = dead_letter

    async def write(self, documents: list[Any]) -> WriteOutcome:
        outcome = WriteOutcome()
        pending = documents
        attempt = 0
        started = time.monotonic()
        while pending:
            attempt += 1
            try:
                await self.target.insert_many(pending, ordered=False)
                outcome.written += len(pending)
                return outcome
            except BulkWriteError as exc:
                split = split_bulk_error(exc, len(pending))
                outcome.written += split.written
                outcome.already_present += len(split.duplicates)
                for index, verdict in split.rejected:
                    self.dead_letter.add(pending[index], verdict.code, verdict.message)
                    outcome.rejected += 1
                if split.fatal is not None:
                    raise _fatal(split.fatal.code, split.fatal.message) from exc
                if split.throttled:
                    self.metrics.throttled += 1
                pending = [pending[i] for i in split.retry]
                delay = split.retry_after_s
            except Exception as exc:  # noqa: BLE001 - classified
                verdict = classify(exc)
                if not verdict.retryable:
                    raise _fatal(verdict.code, verdict.message) from exc
                if verdict.kind.value == "throttled":
                    self.metrics.throttled += 1
                delay = verdict.retry_after_s
            if pending:
                self._give_up_if_exhausted(attempt, started)
                self.metrics.retries += 1
                await asyncio.sleep(self.policy.delay(attempt, delay))
        return outcome

    def _give_up_if_exhausted(self, attempt: int, started: float) -> None:
        elapsed = time.monotonic() - started
        if attempt >= self.policy.max_attempts or elapsed >= self.policy.max_seconds:
            raise RunFailed(
                f"insert still failing after {attempt} attempts in {elapsed:.0f}s",
                hint="the target may be down or throttling hard; run the same command again "
                "to resume",
            )


def _fatal(code: int | None, message: str) -> Exception:
    if code in (UNAUTHORIZED, AUTHENTICATION_FAILED):
        return SettingsError(
            f"the target refused the write: {message}",
            hint="check the user and password in MIG_TARGET_DB_CONNECTION_STRING and its roles",
        )
    return RunFailed(f"the target refused the write (code {code}): {message}")
