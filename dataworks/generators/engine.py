"""The generation pipeline: worker processes build batches, async writers insert them.

    ledger.pending() ─► executor (N spawn processes) ─► ready queue ─► W writers ─► sink
                  ▲                                                        │
                  └──────────── slots (bounded number of batches alive) ◄──┘

At most `slots` batches exist at any moment (being built, waiting or being written), so
memory is flat however large `--total` is. Batches finish in any order; the ledger records
which are acknowledged and the caller checkpoints it every `checkpoint_every` documents.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from dataworks.errors import DataWorksError, RunFailed
from dataworks.generators.ledger import BatchLedger
from dataworks.generators.source import GeneratorSource
from dataworks.generators.worker import BatchPlan, BuiltBatch, init_worker, make_batch, started
from dataworks.monitoring.metrics import RunMetrics

Sink = Callable[[BuiltBatch], Awaitable[None]]


@dataclass(frozen=True)
class EngineOptions:
    workers: int = 1  # 0: build batches in a thread of this process
    write_workers: int = 2
    checkpoint_every: int = 50_000  # documents between checkpoints

    @property
    def slots(self) -> int:
        return max(2, self.workers * 2) + self.write_workers


def make_executor(source: GeneratorSource, workers: int) -> Executor:
    """The generation workers, started now: their interpreter start, imports and generator
    file load overlap what the main process does before the first batch (probing the
    generator, connecting, reading the checkpoint)."""
    if workers <= 0:
        return ThreadPoolExecutor(1, initializer=init_worker, initargs=(source, True))
    executor = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=init_worker,
        initargs=(source,),
    )
    for _ in range(workers):  # one process is started per task no idle worker can take
        executor.submit(started)
    return executor


async def run_batches(
    plan: BatchPlan,
    ledger: BatchLedger,
    sink: Sink,
    options: EngineOptions,
    metrics: RunMetrics,
    checkpoint: Callable[[], Awaitable[None]] | None = None,
    executor: Executor | None = None,
) -> None:
    """Build and hand every pending batch of `ledger` to `sink`; returns when all are done.
    `executor` (from `make_executor`): workers started earlier; shut down here either way."""
    loop = asyncio.get_running_loop()
    slots = asyncio.Semaphore(options.slots)
    ready: asyncio.Queue[tuple[int, asyncio.Future[BuiltBatch]] | None] = asyncio.Queue()
    since_checkpoint = 0
    save_lock = asyncio.Lock()
    metrics.concurrency = options.write_workers
    if executor is None:
        executor = make_executor(plan.source, options.workers)

    async def produce() -> None:
        for index in ledger.pending():
            await slots.acquire()
            future = loop.run_in_executor(executor, make_batch, plan, index)
            future.add_done_callback(lambda f, i=index: ready.put_nowait((i, f)))
        for _ in range(options.slots):  # every batch handed back: all written
            await slots.acquire()
        for _ in range(options.write_workers):
            ready.put_nowait(None)

    async def write() -> None:
        nonlocal since_checkpoint
        while (item := await ready.get()) is not None:
            index, future = item
            batch = _result(index, future)
            await metrics.timed(sink(batch))
            ledger.mark_done(batch.index)
            metrics.batches += 1
            metrics.bytes_written += len(batch.blob)
            slots.release()
            since_checkpoint += batch.count
            if checkpoint is not None and since_checkpoint >= options.checkpoint_every:
                since_checkpoint = 0
                async with save_lock:
                    await checkpoint()

    tasks = [asyncio.create_task(produce(), name="generate-produce")]
    tasks += [
        asyncio.create_task(write(), name=f"generate-write-{n}")
        for n in range(options.write_workers)
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        executor.shutdown(wait=False, cancel_futures=True)


def _result(index: int, future: asyncio.Future[BuiltBatch]) -> BuiltBatch:
    try:
        return future.result()
    except DataWorksError:
        raise
    except BrokenProcessPool as exc:
        raise RunFailed(
            "a generation worker process died (out of memory, or killed)",
            hint="run the same command again to continue",
        ) from exc
    except Exception as exc:  # noqa: BLE001 - the user's generator raised
        raise RunFailed(
            f"the generator failed on batch {index}: {type(exc).__name__}: {exc}",
            hint="run with --debug for the traceback; --workers 0 runs it in this process",
        ) from exc
