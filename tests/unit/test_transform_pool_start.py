"""A transform pool starts its worker processes when the run starts, before any batch: their
interpreter start and imports overlap the run's connecting and planning (issue 19). The
strategy itself is loaded only by a worker's first batch."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import psutil

from dataworks.core.clients import Endpoint
from dataworks.migrations.loading import load_strategy
from dataworks.migrations.transform_pool import TransformPool
from dataworks.monitoring.metrics import RunMetrics

VOLVO_STRATEGY = str(Path(__file__).resolve().parents[2]
                     / "user_defined/strategies/volvo_strategy.py")


def _workers() -> list[psutil.Process]:
    return [p for p in psutil.Process().children()
            if "multiprocessing.spawn" in " ".join(p.cmdline())]


async def _started_without_a_batch() -> int:
    strategy_cls, _ = load_strategy(VOLVO_STRATEGY)
    pool = TransformPool.for_run(strategy_cls, 2, source=Endpoint("mongodb://127.0.0.1:1/",
                                                                  "db", "c"),
                                 target_namespace="db.out", batch_size=10, metrics=RunMetrics())
    assert pool is not None
    try:
        pool.start()
        deadline = time.monotonic() + 60  # a loaded machine; not a timing assertion
        while len(_workers()) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return len(_workers())
    finally:
        await pool.close()


def test_pool_start_runs_every_worker_process_before_the_first_batch() -> None:
    assert asyncio.run(_started_without_a_batch()) == 2
    assert _workers() == []  # close() ends them
