"""The migration pipeline: partitioned readers -> bounded queue -> insert workers -> target.

    readers (parallel_cursors) --Batch--> asyncio.Queue(maxsize=2*workers) --> workers
        |                                                                       |
        +-- per-partition high-water marks <---- acknowledged batches ----------+
                          |
                  checkpoint store (every checkpoint_interval docs or 5 s, and at exit)

Memory is bounded by (queue size + workers + readers) x batch size, whatever the collection
size. The first SIGINT/SIGTERM stops reading, lets the workers drain the queue, saves the
checkpoint and raises `Interrupted`; running the same command again resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymongo.errors import PyMongoError

from dataworks.checkpoints.store import (
    CHECKPOINT_FORMAT,
    CheckpointStore,
    open_store,
)
from dataworks.core.clients import (
    Endpoint,
    ReadOnlyCollection,
    check_reachable,
    connect,
    fast_count,
)
from dataworks.core.dead_letter import DeadLetterFile, KeptIdsFile
from dataworks.core.errors import Classified, ErrorKind, classify, fatal_error
from dataworks.core.retry import RetryPolicy, with_retries
from dataworks.core.sameness import may_share_a_server, same_collection
from dataworks.core.stop import stop_on_signals
from dataworks.core.suggest import missing_collection
from dataworks.core.throttle import AdaptiveLimiter, ReadPacer
from dataworks.errors import CheckpointError, DataWorksError, Interrupted, UserError
from dataworks.migrations.batches import Batch
from dataworks.migrations.finishing import (
    FinishingOptions,
    before_load,
    finish_indexes,
    verify_load,
)
from dataworks.migrations.identity import config_hash, run_id_for, strategy_code_hash
from dataworks.migrations.legacy import LegacyReader
from dataworks.migrations.partitioning import ALL, NATURAL, Partition, PartitionPlanner
from dataworks.migrations.phases import (
    COPY,
    DONE,
    INDEXES,
    VERIFY,
    differences_path,
    phase_of,
    record_differences,
)
from dataworks.migrations.reader import PartitionReader
from dataworks.migrations.repair import repair_run
from dataworks.migrations.report import MigrationReport
from dataworks.migrations.retry_rejected import retry_rejected
from dataworks.migrations.source_watch import change_warning, count_source, snapshot
from dataworks.migrations.strategy import BaseMigrationStrategy, StrategyContext
from dataworks.migrations.transform_pool import TransformPool
from dataworks.migrations.watermarks import PartitionState, Watermarks
from dataworks.migrations.writer import BatchWriter
from dataworks.monitoring.logs import event
from dataworks.monitoring.metrics import RunMetrics
from dataworks.monitoring.ru import (
    MeteredCounter,
    RequestUnitAccounting,
    detect_kind,
    resolve_kind,
)
from dataworks.monitoring.ru_budget import BudgetControl, RequestUnitBucket

log = logging.getLogger("dataworks.migrate")
SAVE_EVERY_S = 5.0
LEGACY_GROUP = "legacy"


@dataclass
class MigrationOptions:
    source: Endpoint
    target: Endpoint
    strategy_cls: type[BaseMigrationStrategy]
    strategy_ref: str = "default"
    batch_size: int = 1000
    workers: int = 4
    parallel_cursors: int = 2
    checkpoint_store: str = "target"
    checkpoint_interval: int = 50_000
    force_from_start: bool = False
    drop_target: bool = False
    merge: bool = False  # copy into a target that already holds documents
    keep_existing: bool = False  # a different document under the same `_id` stays as it is
    retry_rejected: bool = False  # send the dead letters again first (retry_rejected.py)
    repair: bool = False  # re-copy the _ids the last verification found missing or changed
    repair_from: Path | None = None  # a `verify --report` file instead of the run's own list
    delete_extra: bool = False  # with repair: delete target documents the source lacks
    unacknowledged: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    throttle_recovery_s: float = 5.0
    run_dir: Path = Path(".dataworks/runs")
    handle_signals: bool = True
    finishing: FinishingOptions = field(default_factory=FinishingOptions)
    source_kind: str = "auto"  # cosmos | mongodb | auto (by host): Cosmos sides count RU
    target_kind: str = "auto"
    # One limiter shared by the collections of a database run: N collections never put more
    # than `workers` inserts in flight together (None: this run's own).
    shared_limiter: AdaptiveLimiter | None = None
    transform_workers: int = 0  # processes that run `transform`; 0 = in this process
    # RU/s allowed on each Cosmos DB side (None: no budget until `dataworks throttle` sets one)
    ru_per_second: float | None = None
    # A database run's RU buckets ("source", "target"), shared by its collections; the
    # database run applies `dataworks throttle` to them (None: this run's own, polled here).
    shared_ru_buckets: dict[str, RequestUnitBucket] | None = None


class MigrationEngine:
    def __init__(self, options: MigrationOptions, metrics: RunMetrics | None = None) -> None:
        self.options = options
        self.metrics = metrics or RunMetrics()
        self.stop = asyncio.Event()
        self._pool: TransformPool | None = None  # set by run() when workers transform
        # Source reads of the whole run: throttling slows them down (cursors, batch size).
        self._pacer = ReadPacer(options.parallel_cursors, options.batch_size,
                                recovery_s=options.throttle_recovery_s, metrics=self.metrics)

    # -- public ---------------------------------------------------------------------------

    async def run(self) -> MigrationReport:
        opts = self.options
        _refuse_same_namespace(opts.source, opts.target)
        source_client = connect(opts.source)
        target_client = connect(opts.target)
        # w=0 writes get their own connections: a server that answers them anyway (FerretDB
        # does) would otherwise leave stray replies on connections that checkpoints use.
        self._unacked_client = connect(opts.target, w=0) if opts.unacknowledged else None
        # Transform workers start now: they boot while the run connects and plans.
        self._pool = TransformPool.for_run(opts.strategy_cls, opts.transform_workers,
                                           source=opts.source,
                                           target_namespace=opts.target.namespace,
                                           batch_size=opts.batch_size, metrics=self.metrics)
        if self._pool is not None:
            self._pool.start()
        try:
            return await self._run(source_client, target_client)
        finally:
            if self._pool is not None:
                await self._pool.close()
            await source_client.close()
            await target_client.close()
            if self._unacked_client is not None:
                await self._unacked_client.close()

    # -- the run --------------------------------------------------------------------------

    async def _run(self, source_client: Any, target_client: Any) -> MigrationReport:
        opts = self.options
        source = ReadOnlyCollection(source_client[opts.source.db][opts.source.collection])
        target = target_client[opts.target.db][opts.target.collection]
        await check_reachable(source_client, opts.source, side="source")
        await check_reachable(target_client, opts.target, side="target")
        # `auto`: by host name, else by the server's own replies (a loopback Cosmos DB too)
        opts.source_kind = await detect_kind(opts.source_kind, opts.source, source_client)
        opts.target_kind = await detect_kind(opts.target_kind, opts.target, target_client,
                                             side="target")
        if not await with_retries(source.exists, opts.retry, what="finding the source",
                                  on_retry=self._source_retry):
            raise await missing_collection(source_client, opts.source, side="source")
        # Spelling aside: the servers' own collection UUIDs, before anything is written.
        if await with_retries(
                lambda: same_collection(
                    source_client[opts.source.db], opts.source.collection,
                    target_client[opts.target.db], opts.target.collection,
                    same_namespace=opts.source.namespace == opts.target.namespace,
                    shared_server=may_share_a_server(opts.source.uri, opts.target.uri)),
                opts.retry, what="comparing source and target", on_retry=self._source_retry):
            raise _same_collection_error(opts.source, opts.target)
        strategy = opts.strategy_cls(
            StrategyContext(
                source=source,
                source_namespace=opts.source.namespace,
                target_namespace=opts.target.namespace,
                batch_size=opts.batch_size,
            )
        )
        query, projection = strategy.build_query() or {}, strategy.projection()
        run_id = run_id_for(opts.source, opts.target, opts.strategy_ref)
        store = open_store(self.options.checkpoint_store, target_client)
        report = MigrationReport(
            run_id=run_id,
            source=opts.source.display(),
            target=opts.target.display(),
            strategy=opts.strategy_ref,
            checkpoint_store=store.description,
        )

        # The run's folder: what could not be written, and what was kept unlike the source.
        dead_letter = DeadLetterFile(opts.run_dir / run_id / "dead_letter.jsonl")
        kept_ids = KeptIdsFile(opts.run_dir / run_id / "kept_different.jsonl")
        # the writer reads conflicts back through acknowledged connections (_pipeline)
        self._target, self._dead_letter, self._kept_ids = target, dead_letter, kept_ids
        # What is on the target is ours to overwrite only when the user says so: dropped,
        # merged into, or the output of this very migration (a checkpoint of it exists).
        ours = opts.drop_target or opts.merge
        if opts.drop_target:
            await target.drop()
            await store.delete(run_id)
            log.info("dropped target collection %s", opts.target.namespace)
        elif opts.force_from_start:
            ours = ours or await store.load(run_id) is not None
            await store.delete(run_id)

        state = await store.load(run_id)
        digest = config_hash(query, projection)
        code_hash = strategy_code_hash(opts.strategy_cls)
        phase = COPY
        if state is not None:
            _check_compatible(state, digest)
            phase = phase_of(state)
            if phase == DONE and not opts.repair and not opts.retry_rejected:
                report.status = "nothing to do"
                report.source_count = state.get("source_count")
                report.resumed_from = int(state.get("done_count", 0))
                report.warnings.append(
                    "this migration already finished; use --force-from-start to run it again"
                )
                _note_leftovers(report, dead_letter, kept_ids)
                return report
            watermarks = Watermarks.from_state(state["partitions"])
            event(log, "run_resumed", f"resuming run {run_id} ({phase} phase) from "
                  f"{store.description}", run_id=run_id, done=watermarks.done_count(),
                  phase=phase)
            if phase == COPY:
                _warn_if_strategy_edited(state, code_hash, watermarks.done_count(), report)
        elif opts.repair:
            raise UserError("--repair needs a migration whose copy has finished; there is no "
                            f"checkpoint of this one ({store.description})",
                            hint="run the same command without --repair first")
        if phase == COPY and opts.repair:
            raise UserError("--repair needs a migration whose copy has finished; this one is "
                            "still copying", hint="run the same command without --repair to "
                            "resume the copy first")
        self._fresh = state is None
        if state is None:
            if not ours:
                await _refuse_non_empty_target(target, opts.target)
            for leftover in (dead_letter.path, kept_ids.path):  # an earlier start's
                leftover.unlink(missing_ok=True)
            if opts.retry_rejected:
                report.warnings.append("--retry-rejected: this migration has no checkpoint, "
                                       "so no rejected documents to retry")
        # Every run, resumed or not: what on_start prepares (lookup tables) the transform
        # needs whichever run reads the rest of the source.
        await strategy.on_start()
        if state is not None and opts.retry_rejected:
            await self._retry_rejected(source, target, strategy, query, projection,
                                       dead_letter, report)
            if phase != COPY:  # no copy follows to count into the report
                self._fill_report(report, dead_letter, kept_ids)
            if phase == DONE and not opts.repair:
                report.source_count = state.get("source_count")
                report.target_count = await with_retries(
                    lambda: fast_count(target), opts.retry, what="counting the target")
                return report
        if state is None:
            # Planning only reads: a network blip or a throttled sample is retried, not fatal.
            watermarks = await with_retries(lambda: self._plan(strategy, source, query),
                                            opts.retry, what="planning the source's partitions",
                                            on_retry=self._source_retry)
        report.partitions = len(watermarks.states)
        base_state = {
            "format": CHECKPOINT_FORMAT,
            "run_id": run_id,
            "config_hash": digest,
            "source": opts.source.display(),
            "target": opts.target.display(),
            "strategy": opts.strategy_ref,
            "strategy_code": code_hash,
            "source_count": (state or {}).get("source_count"),
            "source_at_start": (state or {}).get("source_at_start"),
        }
        if phase == COPY:
            await self._copy(source, target, strategy, store, run_id, report, watermarks,
                             query, projection, base_state)
            phase = INDEXES
        else:
            report.source_count = base_state["source_count"]
            report.resumed_from = watermarks.done_count()
            report.warnings.append(
                f"the copy finished in an earlier run; this run continued with its {phase} "
                "phase"
            )
        await self._finish(source, target, strategy, store, run_id, report, watermarks,
                           query, projection, base_state, phase)
        # Counted after the finishing phases: a repair may have added or deleted documents.
        report.target_count = await with_retries(lambda: fast_count(target), opts.retry,
                                                 what="counting the target")
        _note_leftovers(report, dead_letter, kept_ids)  # rejected or kept in any run so far
        await strategy.on_finish(report)
        event(log, "run_finished", report.closing_line(), run_id=run_id,
              **{k: v for k, v in report.to_dict().items() if isinstance(v, int | float)})
        return report

    async def _copy(self, source: ReadOnlyCollection, target: Any,
                    strategy: BaseMigrationStrategy, store: CheckpointStore, run_id: str,
                    report: MigrationReport, watermarks: Watermarks, query: dict[str, Any],
                    projection: dict[str, Any] | None, base_state: dict[str, Any]) -> None:
        """The `copy` phase: every source document through the pipeline, to the last
        acknowledged batch; the checkpoint then moves on to `indexes`."""
        opts = self.options
        count = await count_source(source, query, opts.retry, on_retry=self._source_retry)
        report.source_count = base_state["source_count"] = count
        seekable = all(s.partition.group not in (NATURAL, LEGACY_GROUP)
                       for s in watermarks.states.values())
        if base_state.get("source_at_start") is None:  # kept from the run that started it
            base_state["source_at_start"] = await snapshot(source, query, opts.retry,
                                                           count=count, seekable=seekable)
        if self._fresh:
            # Saved before the first write (index changes included): a run killed at any
            # moment is resumed by the same command, never taken for a stranger's target.
            await self._save(store, run_id, base_state, watermarks, phase=COPY)
        await before_load(source, target, store, opts.finishing, report)
        self.metrics.total = count
        self.metrics.resumed_from = watermarks.done_count()
        report.resumed_from = self.metrics.resumed_from

        writes = target
        if opts.unacknowledged:
            assert self._unacked_client is not None
            writes = self._unacked_client[opts.target.db][opts.target.collection]
            report.warnings.append(
                "--unacknowledged: the target does not confirm writes, so checkpoints cannot "
                "prove delivery; a verification pass runs at the end"
            )
        dead_letter = self._dead_letter
        event(log, "run_started", f"migrating {opts.source.display()} -> {opts.target.display()}",
              run_id=run_id, partitions=len(watermarks.states), strategy=opts.strategy_ref)

        interrupted = False
        error: BaseException | None = None
        with self._signal_handlers():
            try:
                async with RequestUnitAccounting(
                    self.metrics, source=opts.source, source_kind=opts.source_kind,
                    target=opts.target, target_kind=opts.target_kind,
                    ru_per_second=opts.ru_per_second, shared_buckets=opts.shared_ru_buckets,
                ) as ru:
                    reads = ru.reads(source, opts.parallel_cursors)
                    writes = ru.writes(writes, opts.workers)
                    async with self._budget_control(ru, store, run_id, report):
                        await self._pipeline(reads, writes, strategy, watermarks, query,
                                             projection, dead_letter, store, run_id,
                                             base_state)
            except BaseException as exc:  # noqa: BLE001 - re-raised after the final save
                error = _unwrap(exc, opts)
            interrupted = self.stop.is_set() and not watermarks.all_finished()
            copied = error is None and watermarks.all_finished()
            await self._save(store, run_id, base_state, watermarks,
                             phase=INDEXES if copied else COPY, final=True)

        self._fill_report(report, dead_letter, self._kept_ids)
        if error is not None:
            report.status = "failed"
            raise error
        if interrupted:
            report.status = "interrupted"
            raise Interrupted(
                f"interrupted after {self.metrics.done:,} documents; checkpoint saved "
                f"({store.description})",
                hint="run the same command again to resume",
            )
        at_end = await snapshot(source, query, opts.retry, seekable=seekable)
        moved = change_warning(base_state["source_at_start"], at_end)
        if moved:
            log.warning(moved)
            report.warnings.append(moved)

    async def _finish(self, source: ReadOnlyCollection, target: Any,
                      strategy: BaseMigrationStrategy, store: CheckpointStore, run_id: str,
                      report: MigrationReport, watermarks: Watermarks, query: dict[str, Any],
                      projection: dict[str, Any] | None, base_state: dict[str, Any],
                      phase: str) -> None:
        """The `indexes` and `verify` phases (and a repair before verifying), each recorded
        in the checkpoint once done; `done` only after an EQUAL verification (or none)."""
        opts = self.options
        finishing = self.finishing_options()
        if phase == INDEXES:
            await finish_indexes(source, target, store, finishing, report, opts.retry)
            await self._save(store, run_id, base_state, watermarks, phase=VERIFY)
        partitions = [s.partition for s in watermarks.states.values()
                      if s.partition.group != LEGACY_GROUP]
        differences = differences_path(opts.run_dir, run_id)
        found_before = phase == VERIFY and differences.exists()  # an earlier DIFFERENT
        mode = None
        if opts.repair:
            mode = "hash" if finishing.verify_mode in ("count", "none") else None
            report.repair = await repair_run(
                source, target, strategy, finishing, report, partitions, query, projection,
                opts.retry, listed=opts.repair_from or differences,
                given=opts.repair_from is not None, delete_extra=opts.delete_extra,
            )
        # Count verification on a Cosmos DB source: per partition, each count's RU read back.
        counter = (MeteredCounter(opts.source, self.metrics)
                   if resolve_kind(opts.source_kind, opts.source.uri) == "cosmos" else None)
        try:
            result = await verify_load(source, target, finishing, report, strategy,
                                       partitions, query, projection, opts.retry, mode=mode,
                                       count_meter=counter)
        finally:
            if counter is not None:
                await counter.aclose()
                report.request_units = self.metrics.request_units  # verification included
                report.request_units_by = dict(self.metrics.request_units_by)
        if result is None and found_before:
            # Not verifying does not make earlier differences go away: stay in `verify`.
            report.unproven_differences = True
            report.differences_file = str(differences)
            await self._save(store, run_id, base_state, watermarks, phase=VERIFY)
            return
        record_differences(differences, result)
        if result is not None and not result.equal:
            report.differences_file = str(differences)
        await self._save(store, run_id, base_state, watermarks,
                         phase=DONE if result is None or result.equal else VERIFY)

    async def _retry_rejected(self, source: ReadOnlyCollection, target: Any,
                              strategy: BaseMigrationStrategy, query: dict[str, Any],
                              projection: dict[str, Any] | None, dead_letter: DeadLetterFile,
                              report: MigrationReport) -> None:
        opts = self.options

        def make_writer(letters: DeadLetterFile) -> BatchWriter:
            return BatchWriter(target, policy=opts.retry, metrics=self.metrics,
                               dead_letter=letters, keep_existing=opts.keep_existing,
                               kept_ids=self._kept_ids, conflicts_target=target,
                               setting=opts.target.names.uri)

        outcome = await retry_rejected(source, strategy, dead_letter, make_writer, self.metrics,
                                       query=query, projection=projection,
                                       batch_size=opts.batch_size)
        report.retried_rejected = outcome.retried
        landed = outcome.retried - outcome.still_rejected
        message = (f"--retry-rejected: {landed:,} of {outcome.retried:,} rejected documents "
                   "are on the target now")
        if outcome.not_in_source:
            message += (f"; {outcome.not_in_source:,} are no longer in the source and stay "
                        "in the dead-letter file")
        event(log, "rejected_retried", message, retried=outcome.retried, landed=landed)
        report.warnings.append(message)

    async def _plan(self, strategy: BaseMigrationStrategy, source: ReadOnlyCollection,
                    query: dict[str, Any]) -> Watermarks:
        if strategy.reads_itself():
            start = await strategy.get_resume_point()
            return Watermarks([PartitionState(Partition(0, LEGACY_GROUP), high_water=start)])
        planner = PartitionPlanner(source, query, policy=self.options.retry,
                                   on_retry=self._source_retry)
        partitions = await strategy.partitions(planner)
        if partitions is None:
            partitions = await planner.plan(self.options.parallel_cursors)
        start = await strategy.get_resume_point()
        if start is not None:  # an `_id` to start after needs cursors sorted by `_id`
            partitions = [Partition(p.index, ALL) if p.group == NATURAL else p
                          for p in partitions]
        states = [PartitionState(p) for p in partitions]
        if start is not None:  # legacy resume point: skip what the strategy says is done
            for s in states:
                s.high_water = start if s.partition.group not in ("other",) else None
        return Watermarks(states)

    async def _pipeline(self, source: ReadOnlyCollection, target: Any,
                        strategy: BaseMigrationStrategy, watermarks: Watermarks,
                        query: dict[str, Any], projection: dict[str, Any] | None,
                        dead_letter: DeadLetterFile, store: CheckpointStore, run_id: str,
                        base_state: dict[str, Any]) -> None:
        opts = self.options
        queue: asyncio.Queue[Batch | None] = asyncio.Queue(maxsize=2 * opts.workers)
        limiter = opts.shared_limiter or AdaptiveLimiter(
            opts.workers, recovery_s=opts.throttle_recovery_s, metrics=self.metrics)
        writer = BatchWriter(target, policy=opts.retry, metrics=self.metrics,
                             dead_letter=dead_letter, limiter=limiter,
                             keep_existing=opts.keep_existing, kept_ids=self._kept_ids,
                             conflicts_target=self._target, setting=opts.target.names.uri)
        transform = strategy.transform if strategy.transforms() else None
        pool = self._pool
        reader = PartitionReader(
            source, base_query=query, projection=projection, batch_size=opts.batch_size,
            queue=queue, stop=self.stop, metrics=self.metrics, policy=opts.retry,
            transform=transform, pool=pool, pacer=self._pacer, setting=opts.source.names.uri,
        )
        legacy = LegacyReader(strategy, batch_size=opts.batch_size, queue=queue, stop=self.stop,
                              metrics=self.metrics, transform=transform)
        writers_done = asyncio.Event()
        self.metrics.concurrency = opts.workers

        async def write_loop() -> None:
            while (batch := await queue.get()) is not None:
                if batch.pending is None:
                    documents, origins = batch.documents, batch.origins
                else:
                    documents, origins = await batch.pending
                outcome = await self.metrics.timed(writer.write(documents, origins))
                self.metrics.written += outcome.written
                self.metrics.already_present += outcome.already_present
                self.metrics.replaced += outcome.replaced
                self.metrics.kept_different += outcome.kept_different
                self.metrics.rejected += outcome.rejected
                self.metrics.bytes_written += batch.nbytes
                self.metrics.batches += 1
                watermarks[batch.partition].acknowledge(batch.seq, batch.mark,
                                                        batch.source_count)

        async def save_loop() -> None:
            last_count, last_time = watermarks.done_count(), time.monotonic()
            while not writers_done.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(writers_done.wait(), timeout=0.5)
                done = watermarks.done_count()
                due = (done - last_count >= opts.checkpoint_interval
                       or time.monotonic() - last_time >= SAVE_EVERY_S)
                if due and done != last_count:
                    await self._save(store, run_id, base_state, watermarks)
                    last_count, last_time = done, time.monotonic()

        async def read_all() -> None:
            cursors = asyncio.Semaphore(opts.parallel_cursors)

            async def read_one(state: PartitionState) -> None:
                async with cursors:
                    if self.stop.is_set():
                        return
                    if state.partition.group == LEGACY_GROUP:
                        await legacy.read(state)
                    else:
                        await reader.read(state)

            async with asyncio.TaskGroup() as readers:
                for state in watermarks.pending():
                    readers.create_task(read_one(state))

        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(save_loop())
                workers = [group.create_task(write_loop()) for _ in range(opts.workers)]
                await read_all()
                for _ in workers:
                    await queue.put(None)
                await asyncio.gather(*workers)
                writers_done.set()
        finally:
            if pool is not None:
                await pool.close()  # its processes' memory back before indexes and verify

    # -- helpers --------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _budget_control(self, ru: RequestUnitAccounting, store: CheckpointStore,
                              run_id: str, report: MigrationReport) -> Any:
        """The RU budget: the command line's value written beside the checkpoint, and a
        poller that applies what `dataworks throttle` writes there while the run goes."""
        if not ru.buckets:
            if self.options.ru_per_second is not None:
                report.warnings.append(
                    "--ru-per-second applies to Cosmos DB sides only (host *.cosmos.azure.com, "
                    "a server that answers as Cosmos DB, or --source-kind/--target-kind "
                    "cosmos); no budget was applied")
            yield
            return
        if self.options.shared_ru_buckets is not None:
            yield  # a database run's collection: the database run applies its budget
            return
        control = BudgetControl(store, run_id, ru.buckets, self.metrics)
        if self.options.ru_per_second is not None:
            await control.record(self.options.ru_per_second)
        async with control.polling():
            yield

    def _source_retry(self, verdict: Classified, *_: Any) -> None:
        """Planning and counting reads: a throttling answer counts like any other."""
        self.metrics.retries += 1
        if verdict.kind is ErrorKind.THROTTLED:
            self.metrics.throttled += 1
            self.metrics.source_throttled += 1

    def finishing_options(self) -> FinishingOptions:
        finishing = self.options.finishing
        if self.options.unacknowledged:
            # w=0 proves nothing: only reading documents back does (all of them, unless the
            # user asked for a sample).
            mode = "sample" if finishing.verify_mode == "sample" else "hash"
            return FinishingOptions(**{**finishing.__dict__, "verify_mode": mode,
                                       "settle_writes": True})
        return finishing

    async def _save(self, store: CheckpointStore, run_id: str, base: dict[str, Any],
                    watermarks: Watermarks, *, phase: str = COPY, final: bool = False) -> None:
        state = {
            **base,
            "partitions": watermarks.to_state(),
            "done_count": watermarks.done_count(),
            "phase": phase,
            "finished": phase == DONE,  # read by earlier versions and `checkpoints list`
            "updated_at": time.time(),
        }
        try:  # a dropped connection must not end an hours-long run at a checkpoint
            await with_retries(lambda: store.save(run_id, state), self.options.retry,
                               what="saving the checkpoint")
        except (DataWorksError, PyMongoError, OSError) as exc:
            if not final:
                raise
            # The last saved checkpoint is still valid (marks only move forward).
            log.warning("could not save the final checkpoint (%s); the previous one stands", exc)
            return
        event(log, "checkpoint_saved", f"checkpoint saved: {watermarks.done_count():,} documents",
              level=logging.DEBUG, run_id=run_id, done=watermarks.done_count())

    def _fill_report(self, report: MigrationReport, dead_letter: DeadLetterFile,
                     kept_ids: KeptIdsFile) -> None:
        m = self.metrics
        m.finish()
        report.read = m.read
        report.written = m.written
        report.already_present = m.already_present
        report.replaced = m.replaced
        report.kept_different = m.kept_different
        report.transformed = m.transformed
        report.dropped = m.dropped
        report.rejected = m.rejected
        report.retries = m.retries
        report.throttled = m.throttled
        report.source_throttled = m.source_throttled
        report.source_read_limits = self._pacer.lowest()
        report.duration_s = m.elapsed
        report.docs_per_second = m.docs_per_second()
        report.mb_per_second = m.mb_per_second()
        report.peak_memory_mb = m.peak_rss_bytes / 1e6
        report.request_units = m.request_units
        report.request_units_by = dict(m.request_units_by)
        _note_leftovers(report, dead_letter, kept_ids)

    def _signal_handlers(self) -> Any:
        return stop_on_signals(self.stop.set, "finishing in-flight batches and saving the "
                               "checkpoint", enabled=self.options.handle_signals)


def _refuse_same_namespace(source: Endpoint, target: Endpoint) -> None:
    """Before connecting: the same namespace on hosts that may be one server (127.0.0.1 and
    localhost, host and host:27017, resolved names) is refused; `--drop-target` would drop
    the source."""
    if source.namespace == target.namespace and may_share_a_server(source.uri, target.uri):
        raise _same_collection_error(source, target)


def _same_collection_error(source: Endpoint, target: Endpoint) -> UserError:
    return UserError(
        f"source and target may be the same collection ({source.display()} and "
        f"{target.display()}); nothing was read, written or dropped",
        hint=f"point {target.names.db}/{target.names.collection} or {target.names.uri} "
        "somewhere else",
    )


def _note_leftovers(report: MigrationReport, dead_letter: DeadLetterFile,
                    kept_ids: KeptIdsFile) -> None:
    """Rejected and kept documents of every run of this migration: a rerun still says so."""
    report.dead_letters = dead_letter.total()
    if report.dead_letters or dead_letter.count:
        report.dead_letter_file = str(dead_letter.path)
    report.kept_total = kept_ids.total()
    if report.kept_total:
        report.kept_ids_file = str(kept_ids.path)


async def _refuse_non_empty_target(target: Any, endpoint: Endpoint) -> None:
    """A fresh run into a collection that already holds documents would mix them with the
    copy and book the clashes as conflicts: the user decides what is meant."""
    held = await fast_count(target)
    if held:
        raise UserError(
            f"target {endpoint.namespace} already holds {held:,} documents and no checkpoint "
            "of this migration",
            hint="use --drop-target to start clean, or --merge to copy into it",
        )


def _warn_if_strategy_edited(state: dict[str, Any], code_hash: str | None, done: int,
                             report: MigrationReport) -> None:
    """Fixing a transform and resuming is legitimate, but the documents already copied went
    through the earlier code: say so rather than leave a silently mixed target."""
    before = state.get("strategy_code")
    if before is None or code_hash is None or before == code_hash:
        return
    message = (f"the strategy file changed since this run started: the {done:,} documents "
               "already copied went through the earlier version (--force-from-start "
               "re-sends every document through this one and replaces each target document "
               "that comes out different)")
    log.warning(message)
    report.warnings.append(message)


def _check_compatible(state: dict[str, Any], digest: str) -> None:
    if state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"checkpoint format {state.get('format')} is not supported by this version",
            hint="run with --force-from-start",
        )
    if state.get("config_hash") != digest:
        raise CheckpointError(
            "the strategy's query or projection changed since this migration was checkpointed",
            hint="run with --force-from-start to begin again, or restore the strategy",
        )
    if not isinstance(state.get("partitions"), list):
        raise CheckpointError("checkpoint has no partition list", hint="run with --force-from-start")


def _unwrap(exc: BaseException, opts: MigrationOptions) -> BaseException:
    """TaskGroups wrap errors; surface the first one that means something to the user."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _unwrap(inner, opts)
            if isinstance(found, DataWorksError):
                return found
        return _unwrap(exc.exceptions[0], opts)
    if isinstance(exc, PyMongoError):
        return fatal_error(classify(exc), side="database",
                           setting=f"{opts.source.names.uri} or {opts.target.names.uri}")
    return exc
