"""Adaptive insert concurrency (AIMD), so a run settles just under a throttled account's limit.

Insert workers take a permit from the `AdaptiveLimiter` around each `insert_many` (not around
the backoff sleep). When the server throttles (Cosmos DB 16500 / 429), the permitted
concurrency is halved; after `recovery_s` seconds without throttling it goes up by one, and
again after each further quiet period, up to the configured number of workers. A storm of
throttling answers to requests that were already in flight when we slowed down counts once:
only a request started after the last decrease can cause another one.

    limit  4 ─┐            ┌── 3 ──┐
              └ 2 ─┐  ┌ 2 ─┘       └── 4      (┐ = throttled, ┌ = a quiet period passed)
                   └1─┘

`metrics.concurrency` always shows the current limit; the progress display prints it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from dataworks.monitoring.metrics import RunMetrics


@dataclass
class Permit:
    """One insert in flight; `generation` is the limiter's decrease count when it started."""

    generation: int


class AdaptiveLimiter:
    def __init__(
        self,
        maximum: int,
        *,
        minimum: int = 1,
        recovery_s: float = 5.0,
        metrics: RunMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if maximum < 1 or minimum < 1 or minimum > maximum:
            raise ValueError(f"need 1 <= minimum ({minimum}) <= maximum ({maximum})")
        self.maximum = maximum
        self.minimum = minimum
        self.recovery_s = recovery_s
        self.metrics = metrics
        self.clock = clock
        self.limit = maximum
        self.in_use = 0
        self.generation = 0  # number of decreases so far
        self.lowest = maximum
        self.decreases = 0
        self.increases = 0
        self._quiet_since = clock()
        self._waiters: list[asyncio.Future[None]] = []
        self._publish()

    # -- permits --------------------------------------------------------------------------

    async def acquire(self) -> Permit:
        while self.in_use >= self.limit:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # pass the wake-up we were given on to someone else
                raise
            finally:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
        self.in_use += 1
        return Permit(self.generation)

    def release(self) -> None:
        self.in_use -= 1
        self._wake()

    @contextlib.asynccontextmanager
    async def permit(self) -> AsyncIterator[Permit]:
        permit = await self.acquire()
        try:
            yield permit
        finally:
            self.release()

    # -- feedback -------------------------------------------------------------------------

    def throttled(self, permit: Permit) -> None:
        """The request holding `permit` was throttled: halve, unless we already did since."""
        self._quiet_since = self.clock()
        if permit.generation != self.generation or self.limit <= self.minimum:
            return
        self.limit = max(self.minimum, self.limit // 2)
        self.generation += 1
        self.decreases += 1
        self.lowest = min(self.lowest, self.limit)
        self._publish()

    def succeeded(self) -> None:
        """A request got through: after a quiet period, allow one more in flight."""
        if self.limit >= self.maximum:
            return
        now = self.clock()
        if now - self._quiet_since >= self.recovery_s:
            self.limit += 1
            self.increases += 1
            self._quiet_since = now
            self._publish()
            self._wake()

    # -- internals ------------------------------------------------------------------------

    def _wake(self) -> None:
        free = self.limit - self.in_use
        for waiter in self._waiters:
            if free <= 0:
                break
            if not waiter.done():
                waiter.set_result(None)
                free -= 1

    def _publish(self) -> None:
        if self.metrics is not None:
            self.metrics.concurrency = self.limit


class Unlimited:
    """A limiter that never limits (callers that did not ask for adaptation)."""

    @contextlib.asynccontextmanager
    async def permit(self) -> AsyncIterator[Permit]:
        yield Permit(0)

    def throttled(self, permit: Permit) -> None:
        pass

    def succeeded(self) -> None:
        pass
