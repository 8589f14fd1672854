"""What happens around the data load: deferring indexes before it, building or copying them
after it, and proving the result by verification.

Kept out of the engine so the pipeline stays about moving documents; the engine calls
`before_load` before the copy, then `finish_indexes` and `verify_load` as the run's
`indexes` and `verify` phases (phases.py), saving the phase after each.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from dataworks.checkpoints.store import CheckpointStore
from dataworks.core.clients import ReadOnlyCollection, fast_count
from dataworks.core.retry import RetryPolicy
from dataworks.indexes import build_pending_indexes, copy_indexes, defer_indexes
from dataworks.migrations.report import MigrationReport
from dataworks.migrations.strategy import BaseMigrationStrategy
from dataworks.monitoring.logs import event
from dataworks.monitoring.metrics import run_phase
from dataworks.verify import VerifyReport, verify
from dataworks.verify.counting import CountMeter

log = logging.getLogger("dataworks.migrate")
VERIFY_MODES = ("count", "hash", "sample", "none")


@dataclass(frozen=True)
class FinishingOptions:
    verify_mode: str = "count"  # count | hash | sample | none
    sample_size: int = 1000
    create_indexes: bool = False
    disable_indexes: bool = False
    parallelism: int = 2
    settle_writes: bool = False  # w=0 writes may still be landing when the load "ends"


async def before_load(source: ReadOnlyCollection, target: Any, store: CheckpointStore,
                      options: FinishingOptions, report: MigrationReport) -> None:
    """With --disable-indexes: record the indexes to build and load without them."""
    if not options.disable_indexes:
        return
    deferred = await defer_indexes(source, target, store)
    if deferred.dropped:
        report.warnings.append(
            "loading without secondary indexes (dropped from the empty target, rebuilt after "
            "the data): " + ", ".join(deferred.dropped)
        )
    report.warnings.extend(deferred.notes)
    report.indexes = {"pending": [s.name for s in deferred.pending],
                      "skipped": [{"name": s.name, "reason": s.reason} for s in deferred.skipped]}


async def finish_indexes(source: ReadOnlyCollection, target: Any, store: CheckpointStore,
                         options: FinishingOptions, report: MigrationReport,
                         policy: RetryPolicy) -> None:
    """The `indexes` phase: build the deferred indexes (the record in `store` says which are
    still to build, so an interrupted build continues), then copy the source's indexes."""
    if options.settle_writes:
        await wait_for_writes_to_land(target)
    if options.disable_indexes:
        with run_phase("building indexes", unit="indexes"):
            built = await build_pending_indexes(target, store, policy=policy)
        report.indexes = {**(report.indexes or {}), "built": built.to_dict()}
        _note_index_problems(report, built.to_dict())
    if options.create_indexes:
        with run_phase("copying indexes", unit="indexes"):
            copied = await copy_indexes(source, target, policy=policy)
        report.indexes = {**(report.indexes or {}), "copied": copied.to_dict()}
        _note_index_problems(report, copied.to_dict())


async def verify_load(source: ReadOnlyCollection, target: Any, options: FinishingOptions,
                      report: MigrationReport, strategy: BaseMigrationStrategy,
                      partitions: list[Any], query: dict[str, Any],
                      projection: dict[str, Any] | None, policy: RetryPolicy,
                      mode: str | None = None,
                      count_meter: CountMeter | None = None) -> VerifyReport | None:
    """The `verify` phase: compare the target with the source (through the strategy's
    transform). None when verification is off."""
    mode = mode or options.verify_mode
    if mode == "none":
        return None
    transform = strategy.transform if strategy.transforms() else None
    if transform is not None and mode == "count":
        # Counts differ by design when a transform drops or splits documents: check that
        # a sample of source documents, transformed, is on the target instead.
        mode = "sample"
        report.warnings.append(
            "counts cannot be compared across a transform; verified a sample of "
            f"{options.sample_size:,} transformed documents instead (--verify hash checks all)"
        )
    total = {"hash": report.source_count, "sample": options.sample_size}.get(mode)
    with run_phase(f"verifying ({mode})", total=total):
        result = await verify(
            source, target, mode,
            sample_size=options.sample_size,
            transform=transform,
            partitions=partitions or None,
            parallelism=options.parallelism,
            policy=policy,
            source_query=query or None,
            source_projection=projection,
            count_meter=count_meter,
        )
    report.verification = result.to_dict(limit=100)
    event(log, "verified", f"verify --mode {mode}: "
          f"{'EQUAL' if result.equal else 'DIFFERENT'}", mode=mode,
          equal=result.equal)
    return result


async def wait_for_writes_to_land(target: Any, *, quiet_s: float = 1.0,
                                  limit_s: float = 120.0) -> None:
    """Unacknowledged inserts are still queued on the server after the client sent them:
    wait until the target's count stops moving (or the limit passes) before checking it."""
    deadline = time.monotonic() + limit_s
    last = -1
    while time.monotonic() < deadline:
        current = await fast_count(target)
        if current == last:
            return
        last = current
        await asyncio.sleep(quiet_s)
    log.warning("the target's count was still changing after %.0fs of waiting", limit_s)


def _note_index_problems(report: MigrationReport, outcome: dict[str, Any]) -> None:
    for name, message in outcome.get("failed", {}).items():
        report.warnings.append(f"index {name} could not be built: {message}")
    for skipped in outcome.get("skipped", []):
        report.warnings.append(f"index {skipped['name']} skipped: {skipped['reason']}")
