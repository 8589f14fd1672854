"""Transforms on every core: a strategy's `transform` runs in a pool of worker processes.

    reader --raw batch--> submit() --blob--> spawn workers (transform_worker.py)
       |                     |                         |
       +-- Batch(pending) -> queue -> insert worker awaits `pending` -> RawBSONDocuments

The reader queues each batch at once with its transform still running (`Batch.pending`), so
several batches are transformed in parallel while reading and writing go on; the insert
worker that takes the batch waits for its documents. Marks are acknowledged only after the
transformed documents are written, exactly as in-process, so order, checkpoints and resume
do not change. At most `processes x DEPTH` batches are in the pool at once (memory bound).

`--transform-workers 0`, a strategy that reads itself (`read_batch`) or a class that does
not come from a file the workers can load transform in the main process as before.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from multiprocessing.context import SpawnContext, SpawnProcess
from pathlib import Path
from typing import Any

import bson
from bson.raw_bson import RawBSONDocument

from dataworks.core.clients import RAW_CODEC, Endpoint
from dataworks.core.malloc import fix_mmap_threshold
from dataworks.errors import RunFailed
from dataworks.migrations.strategy import BaseMigrationStrategy
from dataworks.migrations.transform_worker import (
    TransformedBatch,
    WorkerPlan,
    init_worker,
    started,
    transform_batch,
    warm_up,
)
from dataworks.monitoring.metrics import RunMetrics
from dataworks.plugins import PluginRef

# The transformed documents of a batch and the source `_id` each came from (None: each
# document's own `_id`, as for a pass-through batch).
Transformed = tuple[list[RawBSONDocument], list[Any] | None]
DEPTH = 2  # batches per worker process: one being transformed, one waiting its turn


def plugin_ref_of(cls: type[BaseMigrationStrategy]) -> PluginRef | None:
    """Where a worker process can load `cls` from: its file, if it was loaded from one."""
    module = sys.modules.get(cls.__module__)
    path = getattr(module, "__file__", None)
    if path is None or getattr(module, cls.__name__, None) is not cls:
        return None
    return PluginRef(str(Path(path).resolve()), cls.__name__)


@contextmanager
def _main_module_hidden() -> Iterator[None]:
    """While a spawn child is being started: a `__main__` with neither `__spec__` nor
    `__file__`, so that the child does not import the parent's main script again.

    `dataworks` as installed is a console script (`from dataworks.cli import main`, then
    `main()` under `if __name__ == "__main__"`): spawn re-imports it in every worker as
    `__mp_main__`, which loads the whole CLI (typer, rich, pydantic, the engines) there:
    ~17 MB more RSS and ~0.2 s more start-up per worker than under `python -m dataworks`
    (bench/: 314 vs 280 MB for the volvo strategy with 2 workers). The workers need nothing
    from `__main__`: their functions are in `transform_worker`, and the strategy is loaded
    from its file's path."""
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved = {k: main.__dict__[k] for k in ("__spec__", "__file__") if k in main.__dict__}
    main.__spec__ = None
    main.__dict__.pop("__file__", None)
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


class _WorkerProcess(SpawnProcess):
    def start(self) -> None:
        with _main_module_hidden():
            super().start()


class _WorkerContext(SpawnContext):
    """spawn, without re-importing the parent's main script in the child (see above)."""

    Process = _WorkerProcess


class TransformPool:
    def __init__(self, plan: WorkerPlan, processes: int, metrics: RunMetrics) -> None:
        self.processes = processes
        self.metrics = metrics
        # This process now sends and receives a blob per batch besides its server traffic:
        # keep batch-sized buffers out of the heap (core/malloc.py), as the workers do.
        fix_mmap_threshold()
        self._slots = asyncio.Semaphore(processes * DEPTH)
        self._pending: set[asyncio.Task[Transformed]] = set()
        context = _WorkerContext()
        self._barrier = context.Barrier(processes)
        self._executor = ProcessPoolExecutor(
            processes, mp_context=context, initializer=init_worker,
            initargs=(plan, self._barrier, os.getpid()),
        )

    @classmethod
    def for_run(cls, strategy_cls: type[BaseMigrationStrategy], processes: int, *,
                source: Endpoint, target_namespace: str, batch_size: int,
                metrics: RunMetrics) -> TransformPool | None:
        """A pool when this run transforms in worker processes, else None (in-process)."""
        if processes <= 0 or not strategy_cls.transforms() or strategy_cls.reads_itself():
            return None
        ref = plugin_ref_of(strategy_cls)
        if ref is None:
            return None
        plan = WorkerPlan(ref, source, source.namespace, target_namespace, batch_size)
        return cls(plan, processes, metrics)

    async def submit(self, docs: list[RawBSONDocument]) -> Awaitable[Transformed]:
        """Start transforming a batch (waits while the pool is full); await the result for
        the transformed documents, ready for `insert_many`, and the source `_id` of each."""
        await self._slots.acquire()
        try:
            blob = b"".join(d.raw for d in docs)
            future = asyncio.get_running_loop().run_in_executor(
                self._executor, transform_batch, blob)
        except BaseException:
            self._slots.release()
            raise
        task = asyncio.ensure_future(self._collect(future))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return task

    def start(self) -> None:
        """Start the worker processes now, without waiting: their interpreter start and
        imports (~0.2 s of CPU each) overlap the run's connecting and planning instead of
        delaying its first batch. The strategy is still loaded (and on_start run) by each
        worker's first batch, so a run that has nothing to copy runs no user code there."""
        for _ in range(self.processes):
            self._executor.submit(started)

    async def warm_up(self) -> set[int]:
        """Start every worker and have it load the strategy (and run on_start) now, not with
        its first batch; the process ids. Used where start-up must not be timed (bench/)."""
        loop = asyncio.get_running_loop()
        pids = await asyncio.gather(*(loop.run_in_executor(self._executor, warm_up)
                                      for _ in range(self.processes)))
        return set(pids)

    async def _collect(self, future: asyncio.Future[TransformedBatch]) -> Transformed:
        try:
            result = await future
        except BrokenProcessPool as exc:
            raise RunFailed(
                "a transform worker process died (out of memory, or killed)",
                hint="checkpoints were saved: run the same command again to resume; "
                "--transform-workers 0 transforms in the main process",
            ) from exc
        finally:
            self._slots.release()
        self.metrics.transformed += result.transformed
        self.metrics.dropped += result.dropped
        return bson.decode_all(result.blob, RAW_CODEC), result.origins

    async def close(self) -> None:
        for task in self._pending:
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
        # Waits only for a batch a worker is in the middle of (after an error or a stop).
        await asyncio.to_thread(self._executor.shutdown, True, cancel_futures=True)
