"""Code that runs in generation worker processes (or a thread, with `--workers 0`).

Each worker loads the generator file when the pool starts (`init_worker`), builds its
generator with its first batch (`make_batch`, which receives the run's plan), then turns batch
indices into one bytes blob of concatenated BSON documents. One blob per batch is the cheapest thing to send
between processes: a single bytes object pickles as a memory copy.
"""

from __future__ import annotations

import gc
import signal
from dataclasses import dataclass

from dataworks.generators.base import BaseDataGenerator
from dataworks.generators.ids import batch_seed, id_prefix, joined_with_ids
from dataworks.generators.source import GeneratorSource, build_generator
from dataworks.plugins import PluginRef, load_plugin


@dataclass(frozen=True)
class BatchPlan:
    """Everything a worker needs to build any batch of the run."""

    source: GeneratorSource
    seed: int
    total: int
    batch_size: int


@dataclass(frozen=True)
class BuiltBatch:
    index: int
    count: int
    blob: bytes  # `count` BSON documents back to back


class BatchMaker:
    def __init__(self, plan: BatchPlan) -> None:
        self.plan = plan
        self.generator: BaseDataGenerator = build_generator(plan.source, plan.seed)
        self.prefix = id_prefix(plan.seed)

    def make(self, index: int) -> BuiltBatch:
        plan = self.plan
        start = index * plan.batch_size
        count = max(0, min(plan.batch_size, plan.total - start))
        self.generator.reseed(batch_seed(plan.seed, index))
        docs = self.generator.encode_batch(start, count)
        if len(docs) != count:
            raise RuntimeError(
                f"{type(self.generator).__name__}.encode_batch({start}, {count}) returned "
                f"{len(docs)} documents"
            )
        return BuiltBatch(index, count, joined_with_ids(docs, start, self.prefix))


_maker: BatchMaker | None = None
_in_process = False


def init_worker(source: GeneratorSource, in_process: bool = False) -> None:
    """Process-pool initializer, run as soon as the pool starts (before the run's plan is
    known): load the generator file again from its path. Nothing here may fail: a file that
    cannot be loaded fails the first batch instead, with its own message."""
    global _in_process
    _in_process = in_process
    if not in_process:
        # Ctrl-C goes to the whole process group; the parent decides, workers keep going.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if source.kind == "plugin" and source.class_name is not None:
        try:
            load_plugin(PluginRef(source.path, source.class_name), BaseDataGenerator,
                        kind="generator")
        except Exception:  # noqa: BLE001,S110 - reported by the first batch (make_batch)
            pass


def started() -> None:
    """Nothing: submitted once per worker so that the pool starts them all at once."""


def make_batch(plan: BatchPlan, index: int) -> BuiltBatch:
    """Batch `index` of `plan`; the worker builds its generator with the first batch."""
    global _maker
    if _maker is None or _maker.plan != plan:
        _maker = BatchMaker(plan)
        if not _in_process:
            # The pools built above live for the whole run: keep the cyclic GC off them.
            gc.collect()
            gc.freeze()
    return _maker.make(index)
