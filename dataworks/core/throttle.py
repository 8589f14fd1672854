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
        publish: Callable[[int], None] | None = None,
    ) -> None:
        if maximum < 1 or minimum < 1 or minimum > maximum:
            raise ValueError(f"need 1 <= minimum ({minimum}) <= maximum ({maximum})")
        self.maximum = maximum
        self.minimum = minimum
        self.recovery_s = recovery_s
        self.metrics = metrics
        self.clock = clock
        self._on_change = publish
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

    def throttled(self, permit: Permit) -> bool:
        """The request holding `permit` was throttled: halve, unless we already did since.
        True when this answer counted (the first since the last decrease)."""
        self._quiet_since = self.clock()
        if permit.generation != self.generation:
            return False
        self.generation += 1  # later answers to requests already in flight count once
        if self.limit > self.minimum:
            self.limit = max(self.minimum, self.limit // 2)
            self.decreases += 1
            self.lowest = min(self.lowest, self.limit)
            self._publish()
        return True

    def succeeded(self) -> bool:
        """A request got through: after a quiet period, allow one more in flight. True when
        a quiet period passed (whether or not the limit was already at its maximum)."""
        now = self.clock()
        if now - self._quiet_since < self.recovery_s:
            return False
        self._quiet_since = now
        if self.limit < self.maximum:
            self.limit += 1
            self.increases += 1
            self._publish()
            self._wake()
        return True

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
        if self._on_change is not None:
            self._on_change(self.limit)
        elif self.metrics is not None:
            self.metrics.concurrency = self.limit


class ReadPacer:
    """Adaptive pacing of source reads: how many round trips (find / getMore / aggregate) may
    be in flight, and how many documents each asks for.

    A throttled read halves both (the batch size down to `min_batch`); each quiet period of
    `recovery_s` gives back one round trip and doubles the batch size, up to what was
    configured. Reading 1,000 documents of 2 KB in one getMore can cost more RU than a small
    account grants per second: a smaller batch is what lets such a request through at all.
    """

    def __init__(self, cursors: int, batch_size: int, *, recovery_s: float = 5.0,
                 metrics: RunMetrics | None = None, min_batch: int = 10,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.metrics = metrics
        self.max_batch = batch_size
        self.min_batch = max(1, min(min_batch, batch_size))
        self.batch_size = batch_size
        self.lowest_batch = batch_size
        self.limiter = AdaptiveLimiter(cursors, recovery_s=recovery_s, clock=clock,
                                       publish=self._publish_cursors)
        self._publish_batch()

    def permit(self) -> contextlib.AbstractAsyncContextManager[Permit]:
        return self.limiter.permit()

    def throttled(self, permit: Permit) -> None:
        if self.metrics is not None:
            self.metrics.throttled += 1
            self.metrics.source_throttled += 1
        if self.limiter.throttled(permit):
            self.batch_size = max(self.min_batch, self.batch_size // 2)
            self.lowest_batch = min(self.lowest_batch, self.batch_size)
            self._publish_batch()

    def succeeded(self) -> None:
        if self.limiter.succeeded() and self.batch_size < self.max_batch:
            self.batch_size = min(self.max_batch, self.batch_size * 2)
            self._publish_batch()

    def lowest(self) -> dict[str, int]:
        return {"lowest_cursors": self.limiter.lowest, "lowest_batch_size": self.lowest_batch}

    def _publish_cursors(self, limit: int) -> None:
        if self.metrics is not None:
            self.metrics.read_concurrency = limit

    def _publish_batch(self) -> None:
        if self.metrics is not None:
            self.metrics.read_batch_size = self.batch_size


class Unlimited:
    """A limiter that never limits (callers that did not ask for adaptation)."""

    @contextlib.asynccontextmanager
    async def permit(self) -> AsyncIterator[Permit]:
        yield Permit(0)

    def throttled(self, permit: Permit) -> bool:
        return False

    def succeeded(self) -> bool:
        return False
