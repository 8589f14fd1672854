"""The replay's reads from a Cosmos DB source, within the run's RU budget.

The copy's reads wait for the source's RU budget and are charged what the source says they
cost (`monitoring.ru`). Following the change stream reads from the same account for as long
as the live run goes: every change-stream page (`getMore`, with `updateLookup`), and the
counts and `_id` lookups that find the deletes Cosmos DB never reports. Those go through
single-connection clients here, so that `getLastRequestStatistics` right after a request
is that request's charge: one for the stream (its pages are read one ahead, in their own
task) and one for the delete checks. Both charge the source's bucket: the database run's
shared one, or this run's own, which `dataworks throttle` changes while the replay goes.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator
from typing import Any

from pymongo.errors import PyMongoError

from dataworks.core.clients import ReadOnlyCollection, connect
from dataworks.monitoring.metrics import RunMetrics
from dataworks.monitoring.ru import RequestUnitMeter
from dataworks.monitoring.ru_budget import BudgetControl, RequestUnitBucket


class ReplayMetering:
    """`stream` and `checks`: the source collection on each of the two clients;
    `request(source)` wraps one round trip on either."""

    def __init__(self, options: Any, metrics: RunMetrics) -> None:
        self.options = options
        shared = options.shared_ru_buckets
        self.bucket = shared["source"] if shared is not None \
            else RequestUnitBucket(options.ru_per_second or math.inf)
        self.owns_bucket = shared is None
        self.meter = RequestUnitMeter(metrics, "source", self.bucket)
        self._clients = [connect(options.source, maxPoolSize=1, minPoolSize=0)
                         for _ in range(2)]
        self.stream, self.checks = (self._collection(c) for c in self._clients)

    def _collection(self, client: Any) -> ReadOnlyCollection:
        return ReadOnlyCollection(client[self.options.source.db][self.options.source.collection])

    @contextlib.asynccontextmanager
    async def request(self, source: ReadOnlyCollection) -> AsyncIterator[None]:
        """Wait for the budget, run the block (one round trip on `source`'s client), then
        charge it, failed requests too (a throttled one is billed as well)."""
        await self.meter.admit()
        database = self._clients[0 if source is self.stream else 1][self.options.source.db]
        try:
            yield
        except PyMongoError:
            await self.meter.sample(database)
            raise
        await self.meter.sample(database)

    @contextlib.asynccontextmanager
    async def budget(self, store: Any, run_id: str) -> AsyncIterator[None]:
        """This run's own bucket follows `dataworks throttle` (a database run's shared
        bucket is its owner's to follow)."""
        if not self.owns_bucket:
            yield
            return
        control = BudgetControl(store, run_id, [self.bucket], self.meter.metrics)
        await control.poll_once()  # a budget changed while the copy ran holds from the start
        async with control.polling():
            yield

    async def aclose(self) -> None:
        for client in self._clients:
            await client.close()
