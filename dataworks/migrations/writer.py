"""Write one batch into the target, exactly: retry what failed, classify every conflict.

`insert_many(ordered=False)`; on a `BulkWriteError` only the documents the server reports as
failed with a retryable error are re-sent (Cosmos DB may apply part of a throttled batch).
Duplicate keys are classified (conflicts.py): the same document already there counts as
"already present"; a different document under the same `_id` is replaced by the new version
(`ReplaceOne` by `_id`, one unordered bulk) or, with `keep_existing`, kept and its `_id`
listed; a clash on another unique index rejects the document. Rejected documents go to the
dead-letter file. Each server call holds a permit of the adaptive limiter (not the backoff
sleep), and tells it when the server throttled, so concurrency follows what the account
can take.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from pymongo import ReplaceOne
from pymongo.errors import BulkWriteError, OperationFailure

from dataworks.core.dead_letter import DeadLetterFile, KeptIdsFile
from dataworks.core.endpoints import TARGET_SETTING
from dataworks.core.errors import (
    DUPLICATE_KEY,
    FATAL_CODES,
    Classified,
    ErrorKind,
    classify,
    classify_code,
    fatal_error,
    server_words,
    split_bulk_error,
)
from dataworks.core.retry import RetryPolicy, with_retries
from dataworks.core.throttle import AdaptiveLimiter, Unlimited
from dataworks.migrations.conflicts import Clash, ConflictClassifier, described_clash
from dataworks.monitoring.metrics import RunMetrics

# Replacements per update command. Small, because FerretDB 1.24 slows down with more
# statements per command and stops answering past 100 (measured on 300 replacements of
# ~400 B documents: 10 per command 15 s in all, 100 per command 18 s for the first 100; an
# update of 101 statements had no reply after 60 s). MongoDB takes any size.
REPLACE_CHUNK = 10


@dataclass
class WriteOutcome:
    written: int = 0
    already_present: int = 0  # the same bytes were already on the target
    replaced: int = 0  # a different document had the `_id`: replaced by the new version
    kept_different: int = 0  # ... kept, with --keep-existing
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
        keep_existing: bool = False,
        kept_ids: KeptIdsFile | None = None,
        conflicts_target: Any = None,
        setting: str = TARGET_SETTING,
    ) -> None:
        self.target = target
        self.setting = setting  # what a fatal error tells the user to check
        self.policy = policy
        self.metrics = metrics
        self.dead_letter = dead_letter
        self.limiter = limiter or Unlimited()
        self.keep_existing = keep_existing
        self.kept_ids = kept_ids
        # Conflicts are read back through acknowledged connections even when the inserts
        # are unacknowledged (w=0 writes answer no duplicates anyway).
        self.classifier = ConflictClassifier(conflicts_target if conflicts_target is not None
                                             else target)

    async def write(self, documents: list[Any], origins: list[Any] | None = None) -> WriteOutcome:
        """Write `documents`; `origins[i]` is the source `_id` document i came from (kept in
        the dead letter so a rejected document can be read again), None when it is its own."""
        outcome = WriteOutcome()
        duplicates: dict[int, dict[str, Any]] = {}
        pending = list(range(len(documents)))
        budget = self.policy.budget(f"insert into {self._name()}")
        while pending:
            async with self.limiter.permit() as permit:
                try:
                    await self.target.insert_many([documents[i] for i in pending], ordered=False)
                except BulkWriteError as exc:
                    split = split_bulk_error(exc, len(pending))
                    error = None
                except Exception as exc:  # noqa: BLE001 - classified below
                    split, error = None, exc
                else:
                    outcome.written += len(pending)
                    self.limiter.succeeded()
                    break
                verdict = self._verdict(split, error, pending, documents, origins, outcome,
                                        duplicates)
                if verdict.kind is ErrorKind.THROTTLED:
                    self.metrics.throttled += 1
                    self.limiter.throttled(permit)
            if split is not None:
                if split.written or split.duplicates or split.rejected:
                    budget.progressed()
                pending = [pending[i] for i in split.retry]
            if pending:
                await self._back_off(budget, verdict)
        if duplicates:
            await self._resolve(documents, origins, duplicates, outcome)
        return outcome

    # -- conflicts ----------------------------------------------------------------------

    async def _resolve(self, documents: list[Any], origins: list[Any] | None,
                       duplicates: dict[int, dict[str, Any]], outcome: WriteOutcome) -> None:
        # Only reads: a connection cut while reading the conflicts back is retried like one
        # during the insert.
        found = await with_retries(lambda: self.classifier.classify(documents, duplicates),
                                   self.policy, what="reading conflicting documents back")
        outcome.already_present += len(found.same)
        for clash in found.clashes:
            self._reject_clash(documents, origins, clash, outcome)
        if not found.different:
            return
        if self.keep_existing:
            outcome.kept_different += len(found.different)
            for position in found.different:
                if self.kept_ids is not None:
                    self.kept_ids.add(documents[position]["_id"])
            return
        await self._replace(documents, origins, found.different, outcome)

    async def _replace(self, documents: list[Any], origins: list[Any] | None,
                       positions: list[int], outcome: WriteOutcome) -> None:
        """Replace the target's documents by `_id` with the new versions (upsert: one deleted
        meanwhile is written all the same), REPLACE_CHUNK per command."""
        for start in range(0, len(positions), REPLACE_CHUNK):
            await self._replace_chunk(documents, origins,
                                      positions[start:start + REPLACE_CHUNK], outcome)

    async def _replace_chunk(self, documents: list[Any], origins: list[Any] | None,
                             positions: list[int], outcome: WriteOutcome) -> None:
        pending = positions
        budget = self.policy.budget(f"replace in {self._name()}")
        while pending:
            retry: list[int] = []
            async with self.limiter.permit() as permit:
                try:
                    await self.target.bulk_write(
                        [ReplaceOne({"_id": documents[p]["_id"]}, documents[p], upsert=True)
                         for p in pending], ordered=False)
                except BulkWriteError as exc:
                    verdict, retry = await self._replace_errors(exc, pending, documents, origins,
                                                                outcome)
                    if len(retry) < len(pending):
                        budget.progressed()
                except Exception as exc:  # noqa: BLE001 - classified below
                    verdict = classify(exc)
                    if not verdict.retryable:
                        # Some servers fail the whole command for one document: find it.
                        if len(pending) > 1:
                            for position in pending:
                                await self._replace_chunk(documents, origins, [position],
                                                          outcome)
                            return
                        await self._reject_or_raise(exc, verdict, documents, origins,
                                                    pending[0], outcome)
                        return
                    retry = pending
                else:
                    outcome.replaced += len(pending)
                    self.limiter.succeeded()
                    return
                if verdict.kind is ErrorKind.THROTTLED:
                    self.metrics.throttled += 1
                    self.limiter.throttled(permit)
            pending = retry
            if pending:
                await self._back_off(budget, verdict)

    async def _replace_errors(self, exc: BulkWriteError, pending: list[int],
                              documents: list[Any], origins: list[Any] | None,
                              outcome: WriteOutcome) -> tuple[Classified, list[int]]:
        details = exc.details or {}
        failed: set[int] = set()
        retry: list[int] = []
        worst = Classified(ErrorKind.TRANSIENT, None, "some replacements were not applied")
        for error in details.get("writeErrors", []):
            position = pending[int(error["index"])]
            failed.add(position)
            verdict = classify_code(error.get("code"), error.get("errmsg", ""))
            if verdict.retryable:
                retry.append(position)
                worst = verdict if verdict.kind is ErrorKind.THROTTLED else worst
            elif verdict.kind is ErrorKind.DUPLICATE:  # the new version clashes elsewhere
                _, name, key = described_clash(error)
                clash = await self.classifier.complete(Clash(position, name or "", key),
                                                       documents[position])
                self._reject_clash(documents, origins, clash, outcome)
            elif verdict.kind is ErrorKind.REJECTED:
                self._reject(documents, origins, position, verdict.code, verdict.message,
                             outcome)
            else:
                self.metrics.errors += 1
                raise fatal_error(verdict, side="target", setting=self.setting)
        if details.get("writeConcernErrors"):  # applied, maybe rolled back: replace again
            retry = sorted(set(retry) | (set(pending) - failed))
        else:
            outcome.replaced += len(set(pending) - failed)
        return worst, retry

    async def _reject_or_raise(self, exc: BaseException, verdict: Classified, documents: list[Any],
                         origins: list[Any] | None, position: int,
                         outcome: WriteOutcome) -> None:
        """One replacement the server refused for good: a fault of the document (rejected),
        unless it is the account's (rights, a missing collection: stop the run)."""
        if verdict.code in FATAL_CODES or not isinstance(exc, OperationFailure):
            self.metrics.errors += 1
            raise fatal_error(verdict, side="target", setting=self.setting) from exc
        if verdict.kind is ErrorKind.DUPLICATE:
            _, name, key = described_clash(exc.details or {})
            clash = await self.classifier.complete(Clash(position, name or "", key),
                                                   documents[position])
            self._reject_clash(documents, origins, clash, outcome)
            return
        self._reject(documents, origins, position, verdict.code, server_words(exc), outcome)

    def _reject_clash(self, documents: list[Any], origins: list[Any] | None, clash: Clash,
                      outcome: WriteOutcome) -> None:
        self._reject(documents, origins, clash.position, DUPLICATE_KEY,
                     f"duplicate key on unique index {clash.index}"
                     + (f": {clash.key}" if clash.key is not None else ""), outcome,
                     index=clash.index, key=clash.key)

    def _reject(self, documents: list[Any], origins: list[Any] | None, position: int,
                code: int | None, reason: str, outcome: WriteOutcome, **clash: Any) -> None:
        document = documents[position]
        origin = origins[position] if origins is not None else None
        self.dead_letter.add(document, code, reason, **clash,
                             source_id=document["_id"] if origin is None else origin)
        outcome.rejected += 1

    # -- inserts ------------------------------------------------------------------------

    def _verdict(self, split: Any, error: BaseException | None, pending: list[int],
                 documents: list[Any], origins: list[Any] | None, outcome: WriteOutcome,
                 duplicates: dict[int, dict[str, Any]]) -> Classified:
        """Book what a failed attempt did; raise if it cannot be retried."""
        if split is None:
            assert error is not None
            verdict = classify(error)
            if not verdict.retryable:
                self.metrics.errors += 1
                raise fatal_error(verdict, side="target", setting=self.setting) from error
            return verdict
        outcome.written += split.written
        for index in split.duplicates:
            duplicates[pending[index]] = split.duplicate_errors.get(index, {})
        for index, rejected in split.rejected:
            self._reject(documents, origins, pending[index], rejected.code, rejected.message,
                         outcome)
        if split.fatal is not None:
            self.metrics.errors += 1
            raise fatal_error(split.fatal, side="target", setting=self.setting)
        kind = ErrorKind.THROTTLED if split.throttled else ErrorKind.TRANSIENT
        message = (f"the target did not satisfy the write concern: {split.write_concern}"
                   if split.write_concern is not None
                   else "some documents of the batch were not written")
        return Classified(kind, None, message, split.retry_after_s)

    async def _back_off(self, budget: Any, verdict: Classified) -> None:
        delay = budget.next_delay(verdict)
        self.metrics.retries += 1
        await asyncio.sleep(delay)

    def _name(self) -> str:
        return str(getattr(self.target, "full_name", "target"))
