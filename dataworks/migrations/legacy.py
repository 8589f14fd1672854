"""Reading through a strategy's own `read_batch(batch_size, resume_from)` (the original
framework's hook). The strategy must return documents in ascending `_id` order; the last
`_id` of each batch is the next `resume_from` and the checkpoint's high-water mark."""

from __future__ import annotations

import asyncio
from typing import Any

import bson

from dataworks.migrations.batches import Batch
from dataworks.migrations.reader import Transform, apply_transform
from dataworks.migrations.strategy import BaseMigrationStrategy
from dataworks.migrations.watermarks import PartitionState
from dataworks.monitoring.metrics import RunMetrics


class LegacyReader:
    def __init__(self, strategy: BaseMigrationStrategy, *, batch_size: int,
                 queue: asyncio.Queue[Batch | None], stop: asyncio.Event, metrics: RunMetrics,
                 transform: Transform | None) -> None:
        self.strategy = strategy
        self.batch_size = batch_size
        self.queue = queue
        self.stop = stop
        self.metrics = metrics
        self.transform = transform

    async def read(self, state: PartitionState) -> None:
        after: Any = state.high_water
        seq = 0
        while not self.stop.is_set():
            docs = list(await self.strategy.read_batch(self.batch_size, resume_from=after))
            if not docs:
                state.reading_finished(seq)
                return
            self.metrics.read += len(docs)
            last_id = docs[-1]["_id"]
            payload = docs
            origins: list[Any] | None = None
            if self.transform is not None:
                origins = []
                payload = await apply_transform(self.transform, docs, self.metrics, origins)
            nbytes = sum(len(bson.encode(d)) for d in docs)
            await self.queue.put(Batch(state.partition.index, seq, last_id, len(docs), payload,
                                       nbytes, origins=origins))
            seq += 1
            after = last_id
