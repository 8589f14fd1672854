"""A request-unit budget for a Cosmos DB side: at most N RU per second, across every reader
and writer of the run.

One token bucket per side, shared by all workers. A request waits until the bucket is not
in debt, runs, and is then charged what the server says it cost (`getLastRequestStatistics`,
see `monitoring.ru`); the charge is only known afterwards, so the bucket may go negative and
the next requests wait for it to refill. Averaged over a few seconds the spend is the
budget; the bucket holds at most one second's worth, so a quiet period does not turn into a
burst the account would throttle.

The budget can change while the run goes (`set_rate`): `dataworks throttle RUN_ID
--ru-per-second N` writes it beside the checkpoint and the engine polls it (`BudgetControl`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("dataworks.ru")
POLL_S = 2.0  # how often a running migration looks for a changed budget


def control_key(run_id: str) -> str:
    """The checkpoint-store record that holds a run's budget (beside its checkpoint)."""
    return f"throttle:{run_id}"


class RequestUnitBucket:
    """`ru_per_s` = `math.inf`: no budget yet (one can be set while the run goes)."""

    def __init__(self, ru_per_s: float = math.inf, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if ru_per_s <= 0:
            raise ValueError("the RU budget must be positive")
        self.clock = clock
        self.rate = float(ru_per_s)
        self.tokens = self.rate  # start with one second's worth
        self._last = clock()
        self.spent = 0.0

    def set_rate(self, ru_per_s: float) -> None:
        if ru_per_s <= 0:
            raise ValueError("the RU budget must be positive")
        self._refill()
        self.rate = float(ru_per_s)
        self.tokens = min(self.tokens, self.rate)

    def _refill(self) -> None:
        now = self.clock()
        if self.limited:
            self.tokens = min(self.rate, self.tokens + (now - self._last) * self.rate)
        self._last = now

    @property
    def limited(self) -> bool:
        return math.isfinite(self.rate)

    def wait_s(self) -> float:
        """Seconds until a request may start (0 when the bucket is not in debt)."""
        if not self.limited:
            return 0.0
        self._refill()
        return 0.0 if self.tokens > 0 else (-self.tokens + 1e-9) / self.rate

    async def admit(self) -> None:
        while (pause := self.wait_s()) > 0:
            await asyncio.sleep(min(pause, 1.0))  # re-check: the rate may change meanwhile

    def charge(self, request_units: float) -> None:
        self._refill()
        if self.limited:
            self.tokens -= request_units
        self.spent += request_units


class BudgetControl:
    """Applies a budget changed beside the checkpoint to the running buckets."""

    def __init__(self, store: Any, run_id: str, buckets: list[RequestUnitBucket],
                 metrics: Any = None) -> None:
        self.store, self.run_id, self.buckets, self.metrics = store, run_id, buckets, metrics

    async def poll_once(self) -> None:
        try:
            record = await self.store.load(control_key(self.run_id))
        except Exception as exc:  # noqa: BLE001 - a budget read never stops a migration
            log.debug("could not read the RU budget: %s", exc)
            return
        if not record or not record.get("ru_per_second"):
            return
        wanted = float(record["ru_per_second"])
        for bucket in self.buckets:
            if bucket.rate != wanted:
                log.info("RU budget changed: %s -> %s RU/s", f"{bucket.rate:,.0f}",
                         f"{wanted:,.0f}")
                bucket.set_rate(wanted)
        if self.metrics is not None:
            self.metrics.ru_budget = wanted

    async def record(self, ru_per_second: float, lock: asyncio.Lock | None = None) -> None:
        """Writes the command line's budget beside the checkpoint, where `dataworks throttle`
        changes it later. A budget record never stops a migration."""
        try:
            async with lock or contextlib.nullcontext():
                await self.store.save(control_key(self.run_id), {
                    "run_id": self.run_id, "ru_per_second": ru_per_second,
                    "updated_at": time.time()})
        except Exception as exc:  # noqa: BLE001 - the run goes on with the budget it has
            log.debug("could not record the RU budget: %s", exc)

    @contextlib.asynccontextmanager
    async def polling(self) -> Any:
        """Applies changed budgets while the block runs."""
        done = asyncio.Event()
        poller = asyncio.create_task(self.run(done))
        try:
            yield
        finally:
            done.set()
            await poller

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=POLL_S)
            await self.poll_once()
