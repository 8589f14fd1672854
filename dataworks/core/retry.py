"""Retry with exponential backoff and full jitter, honouring a server-suggested delay.

Limits (FRAMEWORK_RETRY_MAX_ATTEMPTS, FRAMEWORK_RETRY_MAX_SECONDS) count failures *without
progress*: an attempt that got part of a batch written starts the count again, so a long run
against a throttled account is not stopped for being slow, only for being stuck.
Throttling answers (Cosmos DB 16500 / 429) are the server pacing us, not a failure: they count
against the time limit only; transient errors (network, elections) count against both.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from dataworks.core.errors import Classified, ErrorKind, classify
from dataworks.errors import RunFailed

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    max_seconds: float = 300.0
    base_delay_s: float = 0.1
    max_delay_s: float = 10.0

    def delay(self, attempt: int, suggested_s: float | None = None) -> float:
        """Full-jitter backoff; never shorter than what the server asked for."""
        ceiling = min(self.max_delay_s, self.base_delay_s * (2 ** (min(attempt, 30) - 1)))
        jittered = random.uniform(0, ceiling)
        return max(jittered, suggested_s or 0.0)

    def budget(self, what: str) -> RetryBudget:
        return RetryBudget(self, what)


class RetryBudget:
    """The retry state of one operation: how long it has been stuck, and how often."""

    def __init__(self, policy: RetryPolicy, what: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self.what = what
        self.clock = clock
        self.failures = 0  # consecutive failures without progress (drives the backoff)
        self.transient = 0  # of which not throttling (counts against max_attempts)
        self.since = clock()

    def progressed(self) -> None:
        """Part of the work got through: the operation is not stuck."""
        self.failures = 0
        self.transient = 0
        self.since = self.clock()

    def next_delay(self, verdict: Classified) -> float:
        """How long to wait before the next attempt; raises RunFailed when out of budget."""
        self.failures += 1
        if verdict.kind is not ErrorKind.THROTTLED:
            self.transient += 1
        elapsed = self.clock() - self.since
        if self.transient >= self.policy.max_attempts or elapsed >= self.policy.max_seconds:
            raise RunFailed(
                f"{self.what} still failing after {self.failures} attempts in {elapsed:.0f}s: "
                f"{verdict.message.split(', full error:')[0]}",
                hint="the server may be down or throttling hard; checkpoints were saved, run "
                "the same command again to resume (limits: FRAMEWORK_RETRY_MAX_ATTEMPTS, "
                "FRAMEWORK_RETRY_MAX_SECONDS)",
            )
        return self.policy.delay(self.failures, verdict.retry_after_s)


OnRetry = Callable[[Classified, int, float], None]


async def with_retries(
    operation: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    what: str,
    on_retry: OnRetry | None = None,
    progress: Callable[[], object] | None = None,
) -> T:
    """Run `operation`, retrying transient and throttling errors within the policy's limits.

    `progress`, if given, returns a marker of work done (e.g. batches read); when it moved
    since the last failure the limits start again, so a cursor that dies once an hour in a
    long read is reopened every time. Errors that retrying cannot fix are re-raised unchanged
    (callers decide what they mean).
    """
    budget = policy.budget(what)
    mark = progress() if progress is not None else None
    while True:
        try:
            return await operation()
        except Exception as exc:
            verdict = classify(exc)
            if not verdict.retryable:
                raise
            if progress is not None and (now := progress()) != mark:
                mark = now
                budget.progressed()
            try:
                pause = budget.next_delay(verdict)
            except RunFailed as failed:
                raise failed from exc
            if on_retry is not None:
                on_retry(verdict, budget.failures, pause)
            await asyncio.sleep(pause)
