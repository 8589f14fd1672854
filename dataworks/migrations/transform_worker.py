"""Code that runs in transform worker processes (see `transform_pool.py`).

Each worker loads the strategy file again from its path (as generation workers load
generator files), builds its own instance and runs its `on_start` before its first batch.
A batch crosses the process boundary as one bytes blob of concatenated BSON documents each
way: raw source documents in, encoded transformed documents out. The transform itself is the
engine's `apply_transform` + `encode_transformed`, so drops, splits, `_id` rules and error
messages (`file:line: ... (source document _id ...)`) are the same as in-process.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import bson

from dataworks.core.clients import Endpoint, ReadOnlyCollection, connect
from dataworks.core.malloc import fix_mmap_threshold
from dataworks.errors import DataWorksError, PluginError
from dataworks.migrations.reader import apply_transform, encode_transformed, user_frame
from dataworks.migrations.strategy import BaseMigrationStrategy, StrategyContext
from dataworks.plugins import PluginRef, load_plugin

# Documents a worker decodes, transforms and encodes at a time (issue 19). A decoded ~1.7 KB
# volvo document is ~11 KB of dicts and strings: 10.7 MB for a 1,000-document batch against
# ~1 MB for 100. Each worker's peak RSS went from ~56 to ~45 MB, and its CPU per 100,000
# volvo documents from 3.7-4.3 to 2.9-3.2 s (`_Worker.run` over 30 recorded batches,
# alternating; fewer, hotter objects), the extra event-loop round per chunk included.
CHUNK = 100


@dataclass(frozen=True)
class WorkerPlan:
    """Everything a worker needs to build the strategy the main process uses."""

    strategy: PluginRef
    source: Endpoint  # the strategy's `context.source` (read-only), for on_start lookups
    source_namespace: str
    target_namespace: str
    batch_size: int


@dataclass(frozen=True)
class TransformedBatch:
    blob: bytes  # `count` BSON documents back to back
    count: int
    transformed: int  # source documents the transform returned something for
    dropped: int  # source documents it returned None for
    # The source `_id` of each output document; None when each kept its source's `_id`.
    origins: list[Any] | None = field(default_factory=list)


@dataclass
class _Counts:
    """What `apply_transform` counts (the fields of RunMetrics it touches)."""

    transformed: int = 0
    dropped: int = 0


class _Worker:
    def __init__(self, plan: WorkerPlan) -> None:
        # One loop for the worker's life: async transforms and the source client live on it.
        self.loop = asyncio.new_event_loop()
        cls, _ = load_plugin(plan.strategy, BaseMigrationStrategy, kind="strategy")
        self.strategy = self.loop.run_until_complete(self._build(cls, plan))
        self.loop.run_until_complete(self._start())
        self.transform = self.strategy.transform

    async def _start(self) -> None:
        try:
            await self.strategy.on_start()
        except DataWorksError:
            raise
        except Exception as exc:  # the user's code: name its line, as transform errors do
            raise PluginError(
                f"{user_frame(exc)}the strategy's on_start raised {type(exc).__name__}: "
                f"{exc} (in a transform worker process)",
                hint="on_start runs again in every transform worker; --transform-workers 0 "
                "transforms in the main process",
            ) from None

    @staticmethod
    async def _build(cls: type[BaseMigrationStrategy], plan: WorkerPlan) -> Any:
        client = connect(plan.source)  # lazy: no connection unless the strategy reads
        source = ReadOnlyCollection(client[plan.source.db][plan.source.collection])
        return cls(StrategyContext(source=source, source_namespace=plan.source_namespace,
                                   target_namespace=plan.target_namespace,
                                   batch_size=plan.batch_size))

    def run(self, blob: bytes) -> TransformedBatch:
        """Decode, transform and encode `CHUNK` documents at a time: only their dicts are
        alive at once, not a whole batch's (see CHUNK)."""
        counts = _Counts()
        parts: list[bytes] = []
        origins: list[Any] = []
        same = True
        for chunk in chunks(blob, CHUNK):
            docs = bson.decode_all(chunk)  # dicts, as the in-process path gives `transform`
            chunk_origins: list[Any] = []
            out = self.loop.run_until_complete(apply_transform(
                self.transform, docs, counts, chunk_origins))  # type: ignore[arg-type]
            del docs
            encoded = encode_transformed(out)
            same = same and _same_ids(out, chunk_origins)
            origins += chunk_origins
            parts += [d.raw for d in encoded]
            del out, encoded
        return TransformedBatch(b"".join(parts), len(parts), counts.transformed,
                                counts.dropped, None if same else origins)


def chunks(blob: bytes, size: int) -> Iterator[bytes]:
    """The BSON documents of `blob` (back to back), `size` at a time, as bytes."""
    start = end = count = 0
    while end < len(blob):
        end += int.from_bytes(blob[end:end + 4], "little")
        count += 1
        if count == size:
            yield blob[start:end]
            start, count = end, 0
    if start < end:
        yield blob[start:end]


def _same_ids(out: list[Any], origins: list[Any]) -> bool:
    """Whether every output document kept its source document's `_id` (same type, same
    value): then no origins are sent back and the writer takes each document's own `_id`
    for a dead letter, which is the same. Pickling 1,000 ObjectIds costs ~5 µs each in the
    worker and ~2 µs each in the main process, for every batch."""
    for doc, origin in zip(out, origins, strict=True):
        own = doc["_id"]
        if own is not origin and (type(own) is not type(origin) or own != origin):
            return False
    return True


_plan: WorkerPlan | None = None
_worker: _Worker | None = None
_barrier: Any = None


def init_worker(plan: WorkerPlan, barrier: Any = None, parent: int | None = None) -> None:
    """Process-pool initializer. Nothing here may fail: the strategy is loaded by the first
    batch, so a broken file or on_start becomes that batch's error, not a dead pool."""
    global _plan, _barrier
    _plan, _barrier = plan, barrier
    # Ctrl-C goes to the whole process group; the main process drains and saves, so the
    # workers must keep transforming until it shuts the pool down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fix_mmap_threshold()  # batch-sized blobs in and out: not kept in the heap
    # The parent's pid comes from the parent: a worker still starting when the main process
    # was killed would otherwise watch its new parent (init) and never leave.
    _exit_with_parent(parent or os.getppid())


def transform_batch(blob: bytes) -> TransformedBatch:
    worker = _ready()
    # A batch allocates ~15 containers per document, all freed by reference counting when
    # it is sent; the cyclic collector would only walk them again and again meanwhile
    # (~7% of a worker's CPU with the volvo strategy). Garbage cycles a transform makes are
    # collected after the batch, when the collector is back on.
    gc.disable()
    try:
        return worker.run(blob)
    finally:
        gc.enable()


def started() -> int:
    """Nothing: submitted once per process so that the pool starts them (interpreter and
    imports) while the main process still connects and plans (TransformPool.start)."""
    return os.getpid()


def warm_up() -> int:
    """Load the strategy, then wait for every other worker to have done the same: each of
    the pool's processes takes exactly one of these tasks (see TransformPool.warm_up)."""
    _ready()
    if _barrier is not None:
        _barrier.wait(timeout=120)
    return os.getpid()


def _ready() -> _Worker:
    global _worker
    if _worker is None:
        assert _plan is not None, "init_worker was not called"
        _worker = _Worker(_plan)
        gc.collect()
        gc.freeze()  # the strategy and its on_start lookups live for the whole run
    return _worker


def _exit_with_parent(parent: int) -> None:
    """A main process killed with SIGKILL cannot shut the pool down: leave with it."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()

