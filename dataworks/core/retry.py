"""Retry with exponential backoff and full jitter, honouring a server-suggested delay."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from dataworks.core.errors import Classified, classify
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
        ceiling = min(self.max_delay_s, self.base_delay_s * (2 ** (attempt - 1)))
        jittered = random.uniform(0, ceiling)
        return max(jittered, suggested_s or 0.0)


OnRetry = Callable[[Classified, int, float], None]


async def with_retries(
    operation: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    what: str,
    on_retry: OnRetry | None = None,
) -> T:
    """Run `operation`, retrying transient and throttling errors within the policy's limits."""
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            return await operation()
        except Exception as exc:  # noqa: BLE001 - classified below
            verdict = classify(exc)
            if not verdict.retryable:
                raise
            elapsed = time.monotonic() - started
            if attempt >= policy.max_attempts or elapsed >= policy.max_seconds:
                raise RunFailed(
                    f"{what} still failing after {attempt} attempts in {elapsed:.0f}s: "
                    f"{verdict.message}",
                    hint="the server may be down or overloaded; run the same command again "
                    "to resume, or raise FRAMEWORK_RETRY_MAX_ATTEMPTS",
                ) from exc
            pause = policy.delay(attempt, verdict.retry_after_s)
            if on_retry is not None:
                on_retry(verdict, attempt, pause)
            await asyncio.sleep(pause)
