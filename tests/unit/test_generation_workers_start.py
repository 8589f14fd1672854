"""Generation workers start with the run, before the first batch and before the run's plan
is known (issue 19): their start-up overlaps the main process's probing, connecting and
checkpoint reading. The same seed still gives the same documents (test_generate_core.py)."""

from __future__ import annotations

import time
from pathlib import Path

import psutil

from dataworks.generators.engine import make_executor
from dataworks.generators.source import resolve_source
from dataworks.generators.worker import BatchMaker, BatchPlan, make_batch

VOLVO = str(Path(__file__).resolve().parents[2] / "user_defined/generators/volvo_generator.py")


def _workers() -> list[psutil.Process]:
    return [p for p in psutil.Process().children()
            if "multiprocessing.spawn" in " ".join(p.cmdline())]


def test_make_executor_starts_every_worker_process_before_any_batch() -> None:
    executor = make_executor(resolve_source(VOLVO), 2)
    try:
        deadline = time.monotonic() + 60  # a loaded machine; not a timing assertion
        while len(_workers()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(_workers()) == 2
    finally:
        executor.shutdown(wait=True)
    assert _workers() == []


def test_a_started_worker_builds_the_plans_batches_byte_for_byte() -> None:
    source = resolve_source(VOLVO)
    plan = BatchPlan(source, seed=7, total=250, batch_size=100)
    executor = make_executor(source, 1)
    try:
        got = [executor.submit(make_batch, plan, i).result(timeout=120).blob for i in range(3)]
    finally:
        executor.shutdown(wait=True)
    assert got == [BatchMaker(plan).make(i).blob for i in range(3)]
