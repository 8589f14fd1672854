"""Code that runs in generation worker processes (or a thread, with `--workers 0`).

Each worker builds its generator once (`init_worker`), then turns batch indices into one
bytes blob of concatenated BSON documents. One blob per batch is the cheapest thing to send
between processes: a single bytes object pickles as a memory copy.
"""

from __future__ import annotations

import gc
import signal
from dataclasses import dataclass

from dataworks.generators.base import BaseDataGenerator
from dataworks.generators.ids import batch_seed, id_prefix, with_ids
from dataworks.generators.source import GeneratorSource, build_generator


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
        return BuiltBatch(index, count, b"".join(with_ids(docs, start, self.prefix)))


_maker: BatchMaker | None = None


def init_worker(plan: BatchPlan, in_process: bool = False) -> None:
    """Process-pool initializer: load the generator file again from its path."""
    global _maker
    if not in_process:
        # Ctrl-C goes to the whole process group; the parent decides, workers keep going.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    _maker = BatchMaker(plan)
    if not in_process:
        # The pools built above live for the whole run: keep the cyclic GC off them.
        gc.collect()
        gc.freeze()


def make_batch(index: int) -> BuiltBatch:
    assert _maker is not None, "init_worker was not called"
    return _maker.make(index)
