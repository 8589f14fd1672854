"""A database run: many collections in one command, each one today's single-collection
pipeline (`MigrationEngine`), under one run identity.

    plan (read-only: list the source, match patterns, load every strategy)  -- exit 2 here
      └─ database run document in the checkpoint store (which collections, their outcomes)
           └─ collection job x N, N = --parallel-collections, largest first
                create the target with the source's options -> engine.run() -> validator
           └─ views, after every collection they could read

Every collection keeps its own checkpoint (the engine's run id), so an interrupted run
resumes each unfinished collection exactly and finds finished ones finished without reading
them. One `AdaptiveLimiter` is shared by all engines: N collections never have more than
`workers` inserts in flight together.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

from dataworks.checkpoints.store import (
    CHECKPOINT_FORMAT,
    CheckpointStore,
    open_store,
    parse_store_spec,
)
from dataworks.core.clients import (
    Endpoint,
    ReadOnlyCollection,
    check_reachable,
    connect,
    fast_count,
)
from dataworks.core.sameness import may_share_a_server
from dataworks.core.stop import stop_on_signals
from dataworks.core.throttle import AdaptiveLimiter
from dataworks.errors import Interrupted, UserError
from dataworks.migrations import collection_options as copts
from dataworks.migrations.database_report import CollectionOutcome, DatabaseReport
from dataworks.migrations.engine import MigrationEngine, MigrationOptions
from dataworks.migrations.finishing import finish_indexes, verify_load
from dataworks.migrations.identity import run_id_for
from dataworks.migrations.live import LiveMigration, LiveOptions
from dataworks.migrations.loading import load_strategy
from dataworks.migrations.namespaces import (
    SYSTEM_DATABASES,
    NamespacePair,
    Selection,
    plan_namespaces,
)
from dataworks.migrations.report import MigrationReport
from dataworks.migrations.strategy import StrategyContext
from dataworks.migrations.strategy_map import StrategyMap
from dataworks.monitoring.logs import event
from dataworks.monitoring.metrics import RunMetrics, current_run
from dataworks.monitoring.ru import detect_kind
from dataworks.monitoring.ru_budget import BudgetControl, RequestUnitBucket

log = logging.getLogger("dataworks.migrate")
DATABASE_RUN = "database"  # `kind` of the run document


@dataclass
class DatabaseOptions:
    base: MigrationOptions  # endpoints' URIs and pools, batch size, workers, finishing, ...
    selection: Selection
    strategy: str | None = None  # --strategy: every collection the map does not match
    strategy_map: StrategyMap | None = None
    parallel_collections: int = 2
    live: LiveOptions | None = None  # --live: follow every collection's changes (database_live)


@dataclass
class CollectionJob:
    pair: NamespacePair
    info: dict[str, Any]  # the source's listCollections entry
    outcome: CollectionOutcome
    options: MigrationOptions | None = None  # None for views and skipped collections
    size: int = 0  # bytes (collStats), for largest first
    count: int = 0
    metrics: RunMetrics = field(default_factory=RunMetrics)
    live: LiveMigration | None = None  # --live, until the collection has cut over
    copy_report: MigrationReport | None = None  # --live: the copy's, for the follow
    finished_live: MigrationReport | None = None  # --live: cut over by an earlier run


class DatabaseRun:
    def __init__(self, options: DatabaseOptions, metrics: RunMetrics | None = None) -> None:
        self.options = options
        self.metrics = metrics or RunMetrics()  # the whole run (sums of the collections)
        self.stop = asyncio.Event()
        self.jobs: list[CollectionJob] = []
        self.report: DatabaseReport | None = None  # set once planned
        self.limiter: AdaptiveLimiter | None = None  # the insert permits all collections share
        # One RU budget per Cosmos DB side for the whole run (--ru-per-second, and
        # `dataworks throttle RUN_ID` with this run's id): every collection draws on it.
        self.ru_buckets: dict[str, RequestUnitBucket] = {
            side: RequestUnitBucket(options.base.ru_per_second or math.inf)
            for side in ("source", "target")}
        self._store_lock = asyncio.Lock()

    # -- what the progress display reads ---------------------------------------------------

    def running(self) -> list[CollectionJob]:
        return [j for j in self.jobs if j.outcome.status == "running"]

    def finished_count(self) -> int:
        return sum(j.outcome.status not in ("not started", "running") for j in self.jobs)

    def refresh_metrics(self) -> RunMetrics:
        """Fold the collections' counters into the run's (documents of collections that
        finished in an earlier run count as resumed)."""
        m = self.metrics
        jobs = [j for j in self.jobs if j.options is not None]
        for name in ("read", "written", "already_present", "replaced", "kept_different",
                     "transformed", "dropped", "rejected",
                     "bytes_written", "batches", "retries", "throttled", "errors"):
            setattr(m, name, sum(getattr(j.metrics, name) for j in jobs))
        m.request_units = sum(j.metrics.request_units for j in jobs)
        m.resumed_from = sum(
            (j.outcome.source_count or 0) if j.outcome.status == "already finished"
            else j.metrics.resumed_from for j in jobs)
        m.total = sum(j.count for j in jobs)
        following = {j.pair.source: dict(j.metrics.live) for j in jobs if j.metrics.live}
        if following:  # --live: lag and events per collection (metrics file)
            m.live = {"collections": following}
        return m

    async def _refresh_metrics_every(self, seconds: float) -> None:
        while True:
            self.refresh_metrics()
            await asyncio.sleep(seconds)

    # -- the run ---------------------------------------------------------------------------

    async def run(self) -> DatabaseReport:
        base = self.options.base
        kind, path = parse_store_spec(base.checkpoint_store)
        if kind == "file" and path and path.endswith(".json"):
            raise UserError("a database run keeps one checkpoint per collection: "
                            f"--checkpoint-store file:{path} names a single file",
                            hint="give a directory, e.g. --checkpoint-store file:checkpoints/")
        source_client = connect(base.source)
        target_client = connect(base.target)
        try:
            await check_reachable(source_client, base.source, side="source")
            await check_reachable(target_client, base.target, side="target")
            # decided once for every collection (`auto`: host name, else the server's replies)
            base.source_kind = await detect_kind(base.source_kind, base.source, source_client)
            base.target_kind = await detect_kind(base.target_kind, base.target, target_client,
                                                 side="target")
            self.jobs = await self._plan(source_client)
            store = open_store(base.checkpoint_store, target_client)
            report = DatabaseReport(
                run_id=self._run_id(), source=_masked(base.source), target=_masked(base.target),
                checkpoint_store=store.description,
                parallel_collections=self.options.parallel_collections,
                collections=[j.outcome for j in self.jobs])
            self.report = report
            await self._execute(source_client, target_client, store, report)
            return report
        finally:
            await source_client.close()
            await target_client.close()

    async def _created_meanwhile(self, source_client: Any, report: DatabaseReport) -> None:
        """--live follows the collections planned at its start. One the selection takes that
        the source created since then was neither copied nor followed: its row says so and
        the run fails, rather than call a database right that lacks a collection."""
        catalog = await _catalog(source_client, self.options.selection)
        try:
            pairs = plan_namespaces(self.options.selection,
                                    {db: list(c) for db, c in catalog.items()})
        except UserError:  # every collection dropped meanwhile: nothing new to report
            return
        known = {j.pair.source for j in self.jobs}
        for pair in pairs:
            if pair.source in known:
                continue
            s_db, s_name = pair.source.split(".", 1)
            outcome = CollectionOutcome(
                pair.source, pair.target, kind=str(catalog[s_db][s_name].get("type",
                                                                              "collection")),
                status="failed",
                error="created on the source after this live run started: neither copied "
                "nor followed; run the same command again to copy and follow it")
            report.collections.append(outcome)
            log.error("%s was created on the source during the live run and is not on the "
                      "target", pair.source)

    async def _plan(self, source_client: Any) -> list[CollectionJob]:
        """Read-only: everything that can be refused is refused here, before any write."""
        base, selection = self.options.base, self.options.selection
        catalog = await _catalog(source_client, selection)
        pairs = plan_namespaces(selection, {db: list(c) for db, c in catalog.items()})
        jobs: list[CollectionJob] = []
        strategies: dict[str | None, tuple[type, str]] = {}
        for pair in pairs:
            s_db, s_name = pair.source.split(".", 1)
            t_db, t_name = pair.target.split(".", 1)
            info = catalog[s_db][s_name]
            rule = self.options.strategy_map.rule_for(pair.source) \
                if self.options.strategy_map else None
            spec = rule.strategy if rule else self.options.strategy
            if spec not in strategies:
                strategies[spec] = load_strategy(spec)  # PluginError (exit 2) if broken
            cls, ref = strategies[spec]
            outcome = CollectionOutcome(pair.source, pair.target,
                                        kind=str(info.get("type", "collection")), strategy=ref)
            job = CollectionJob(pair, info, outcome)
            jobs.append(job)
            if rule is not None and rule.skip:
                outcome.status = "skipped"
                continue
            if copts.is_view(info):
                continue
            source = replace(base.source, db=s_db, collection=s_name)
            target = replace(base.target, db=t_db, collection=t_name)
            if pair.source == pair.target and may_share_a_server(source.uri, target.uri):
                raise UserError(f"{pair.source} would be copied onto itself",
                                hint="give --target-uri, --target-db or --ns-from/--ns-to")
            finishing = base.finishing
            if rule is not None and (rule.verify or rule.sample_size):
                finishing = replace(finishing, verify_mode=rule.verify or finishing.verify_mode,
                                    sample_size=rule.sample_size or finishing.sample_size)
            job.options = replace(
                base, source=source, target=target, strategy_cls=cls, strategy_ref=ref,
                batch_size=(rule.batch_size if rule and rule.batch_size else base.batch_size),
                finishing=finishing, handle_signals=False, drop_target=False,
                force_from_start=base.force_from_start or base.drop_target)
            outcome.run_id = run_id_for(source, target, ref)
            await self._measure(source_client, job)
        _refuse_nothing_to_copy(jobs)
        return jobs

    async def _measure(self, source_client: Any, job: CollectionJob) -> None:
        db, name = job.pair.source.split(".", 1)
        try:
            stats = await source_client[db].command("collStats", name)
            job.size, job.count = int(stats.get("size", 0)), int(stats.get("count", 0))
        except Exception:  # noqa: BLE001 - only the order depends on it
            job.count = await fast_count(source_client[db][name])

    def _run_id(self) -> str:
        base, sel = self.options.base, self.options.selection
        key = json.dumps([base.source.host_key(), base.target.host_key(),
                          sorted(sel.source_dbs), sel.all_databases, list(sel.include),
                          list(sel.exclude), list(sel.rename_from), list(sel.rename_to),
                          sel.target_db])
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        names = "_".join(sorted({j.pair.source.split(".")[0] for j in self.jobs}))[:30]
        return f"migrate_db_{''.join(c if c.isalnum() else '_' for c in names)}_{digest}"

    async def _execute(self, source_client: Any, target_client: Any, store: CheckpointStore,
                       report: DatabaseReport) -> None:
        base = self.options.base
        started = time.monotonic()
        previous = await store.load(report.run_id) or {}
        earlier = {c.get("source"): c for c in previous.get("collections", [])
                   if isinstance(c, dict)}
        await self._save(store, report)
        limiter = self.limiter = AdaptiveLimiter(
            base.workers, recovery_s=base.throttle_recovery_s, metrics=self.metrics)
        slots = asyncio.Semaphore(max(1, self.options.parallel_collections))
        copies = sorted((j for j in self.jobs if j.options is not None),
                        key=lambda j: (-j.size, -j.count, j.pair.source))
        gate = None
        if self.options.live is not None:  # every stream opened before any document is read
            from dataworks.migrations import database_live

            gate = await database_live.start_streams(self, self.options.live, copies,
                                                     source_client, store, report.run_id)
        event(log, "database_run_started",
              f"migrating {len(copies)} collections, {self.options.parallel_collections} at a "
              "time, largest first", run_id=report.run_id, collections=len(copies))

        async def copy(job: CollectionJob) -> None:
            async with slots:
                if self.stop.is_set():
                    return
                await self._copy_collection(job, source_client, target_client, limiter,
                                            earlier.get(job.pair.source))
                async with self._store_lock:
                    await self._save(store, report)
            if gate is None:
                return
            if job.live is None or job.outcome.status != "running":
                gate.leave(job.pair.source)  # cut over earlier, or failed: nothing to follow
                return
            await database_live.follow(self, job, source_client, target_client, store, gate)
            async with self._store_lock:
                await self._save(store, report)

        refresher = asyncio.create_task(self._refresh_metrics_every(1.0))  # --metrics-file
        try:
            with self._signal_handlers():
                async with self._budget_control(store, report.run_id):
                    async with asyncio.TaskGroup() as group:
                        for job in copies:
                            group.create_task(copy(job))
                if not self.stop.is_set():
                    await self._views(target_client)
                    if self.options.live is not None:
                        await self._created_meanwhile(source_client, report)
        finally:
            refresher.cancel()
        self.refresh_metrics()
        self.metrics.finish()
        report.duration_s = time.monotonic() - started
        report.docs_per_second = self.metrics.docs_per_second()
        report.peak_memory_mb = self.metrics.peak_rss_bytes / 1e6
        statuses = {c.status for c in report.collections}
        if "interrupted" in statuses or "not started" in statuses:
            report.status = "interrupted"
        elif "failed" in statuses:
            report.status = "failed"
        await self._save(store, report, final=True)
        event(log, "database_run_finished",
              f"{sum(c.ok for c in report.collections)} of {len(report.collections)} "
              "collections right", run_id=report.run_id, status=report.status)
        if report.status == "interrupted":
            done = sum(c.status in ("completed", "already finished") for c in report.collections)
            raise Interrupted(
                f"interrupted with {done} of {len(copies)} collections finished; every "
                f"collection's checkpoint is saved ({report.checkpoint_store})",
                hint="run the same command again to resume")

    async def _copy_collection(self, job: CollectionJob, source_client: Any, target_client: Any,
                               limiter: AdaptiveLimiter, earlier: dict[str, Any] | None) -> None:
        assert job.options is not None
        outcome, opts = job.outcome, replace(job.options, shared_limiter=limiter,
                                             shared_ru_buckets=self.ru_buckets)
        t_db = target_client[opts.target.db]
        outcome.status = "running"
        try:
            if self.options.base.drop_target:
                await t_db[opts.target.collection].drop()
            outcome.option_problems = await copts.create_like_source(
                t_db, opts.target.collection, job.info)
            if job.finished_live is not None:  # --live, cut over by an earlier run
                outcome.take(job.finished_live)
                outcome.live = job.finished_live.live
                outcome.status = "already finished"
                outcome.target_count = await fast_count(t_db[opts.target.collection])
                if earlier is not None and earlier.get("verification"):
                    outcome.verification = earlier["verification"]
                    outcome.verified_earlier = True
                return
            if job.live is not None:  # --live: copy now, follow once the slot is free
                job.live.options = opts  # the insert permits and RU budget all collections share
                with current_run(job.metrics):
                    job.copy_report = await job.live.copy()
                outcome.take(job.copy_report)
                outcome.option_problems += await copts.apply_validation(
                    t_db, opts.target.collection, job.info)
                return
            engine = MigrationEngine(opts, job.metrics)
            engine.stop = self.stop  # one Ctrl-C stops every collection
            with current_run(job.metrics):  # its index build and verification show on its line
                result = await engine.run()
                if result.status == "nothing to do":
                    result.warnings.clear()  # "already finished; use --force-from-start"
                    if not _recorded(earlier):  # data in, but stopped before indexes / verify
                        await _finish_now(opts, engine, source_client, target_client, result)
                    outcome.take(result)
                    outcome.status = "already finished"
                    outcome.target_count = await fast_count(t_db[opts.target.collection])
                    if earlier is not None and _recorded(earlier) and earlier.get("verification"):
                        outcome.verification = earlier["verification"]
                        outcome.verified_earlier = True
                else:
                    outcome.take(result)
                    outcome.status = "completed"
            outcome.option_problems += await copts.apply_validation(
                t_db, opts.target.collection, job.info)
        except Interrupted:
            outcome.status = "interrupted"
            self._partial(job)
        except Exception as exc:  # noqa: BLE001 - one collection's failure is its row's
            outcome.status = "failed"
            outcome.error = str(exc)
            self._partial(job)
            log.error("%s failed: %s", job.pair.source, exc)

    @contextlib.asynccontextmanager
    async def _budget_control(self, store: CheckpointStore, run_id: str) -> Any:
        """The run's RU budget: --ru-per-second written beside the database run's
        document, and a poller that applies what `dataworks throttle RUN_ID` writes there to
        the buckets every collection shares (a collection's own run id is not polled)."""
        base = self.options.base
        if "cosmos" not in (base.source_kind, base.target_kind):
            yield
            return
        self.metrics.ru_budget = base.ru_per_second
        cosmos_sides = [self.ru_buckets[side] for side, kind in
                        (("source", base.source_kind), ("target", base.target_kind))
                        if kind == "cosmos"]
        control = BudgetControl(store, run_id, cosmos_sides, self.metrics)
        if base.ru_per_second is not None:
            await control.record(base.ru_per_second, self._store_lock)
        async with control.polling():
            yield

    def _partial(self, job: CollectionJob) -> None:
        m, outcome = job.metrics, job.outcome
        outcome.read, outcome.migrated = m.read, m.written
        outcome.already_present, outcome.rejected = m.already_present, m.rejected
        outcome.resumed_from = m.resumed_from

    async def _views(self, target_client: Any) -> None:
        """Views after their sources: the pipeline runs over the renamed source collection."""
        targets = {j.pair.source: j.pair.target for j in self.jobs}
        for job in self.jobs:
            if not copts.is_view(job.info) or job.outcome.status == "skipped":
                continue
            s_db = job.pair.source.split(".", 1)[0]
            t_db, t_name = job.pair.target.split(".", 1)
            view_on = f"{s_db}.{(job.info.get('options') or {}).get('viewOn')}"
            on_db, on_name = targets.get(view_on, f"{t_db}.{view_on.split('.', 1)[1]}").split(
                ".", 1)
            if on_db != t_db:
                job.outcome.option_problems.append(
                    f"the view's source {view_on} goes to {on_db}, another database than the "
                    f"view ({t_db}): a view cannot read across databases")
                job.outcome.status = "failed"
                continue
            if view_on not in targets:
                job.outcome.warnings.append(f"the view's source {view_on} is not copied")
            job.outcome.option_problems += await copts.create_view(
                target_client[t_db], t_name, job.info, on_name)
            job.outcome.status = "view created"

    # -- state -----------------------------------------------------------------------------

    async def _save(self, store: CheckpointStore, report: DatabaseReport, *,
                    final: bool = False) -> None:
        state = {
            "format": CHECKPOINT_FORMAT,
            "kind": DATABASE_RUN,
            "run_id": report.run_id,
            "source": report.source,
            "target": report.target,
            "collections": [_stored(c) for c in report.collections],
            "finished": final and report.status == "completed",
            "updated_at": time.time(),
        }
        try:
            await store.save(report.run_id, state)
        except Exception as exc:  # noqa: BLE001 - the collections' own checkpoints stand
            if not final:
                raise
            log.warning("could not save the database run's record (%s)", exc)

    def _signal_handlers(self) -> contextlib.AbstractContextManager[None]:
        return stop_on_signals(self.stop.set, "finishing in-flight batches of every running "
                               "collection and saving their checkpoints",
                               enabled=self.options.base.handle_signals)


def _refuse_nothing_to_copy(jobs: list[CollectionJob]) -> None:
    """`skip` rules that take every selected collection leave a run that migrates nothing
    and would still end "completed" with exit 0: refused, as --ns-exclude patterns that
    leave nothing are."""
    skipped = [j.pair.source for j in jobs if j.outcome.status == "skipped"]
    if skipped and not any(j.options is not None for j in jobs):
        raise UserError("the strategy map skips every selected collection: nothing to copy "
                        f"({', '.join(skipped)})",
                        hint="narrow the map's skip patterns, or select other collections")


def _recorded(earlier: dict[str, Any] | None) -> bool:
    """Did an earlier database run record this collection's end? (It records "completed"
    only once the engine returned: after indexes and verification.)"""
    return bool(earlier and earlier.get("status") in ("completed", "already finished"))


async def _finish_now(opts: MigrationOptions, engine: MigrationEngine, source_client: Any,
                      target_client: Any, report: MigrationReport) -> None:
    """The engine records a collection finished only after its indexes and verification
    (phases.py), but a database run killed after that and before it recorded the outcome
    has no verification to show: do those steps again now."""
    source = ReadOnlyCollection(source_client[opts.source.db][opts.source.collection])
    target = target_client[opts.target.db][opts.target.collection]
    strategy = opts.strategy_cls(StrategyContext(
        source=source, source_namespace=opts.source.namespace,
        target_namespace=opts.target.namespace, batch_size=opts.batch_size))
    query, projection = strategy.build_query() or {}, strategy.projection()
    report.status = "completed"
    report.target_count = await fast_count(target)
    store = open_store(opts.checkpoint_store, target_client)
    finishing = engine.finishing_options()
    await finish_indexes(source, target, store, finishing, report, opts.retry)
    await verify_load(source, target, finishing, report, strategy, [], query, projection,
                      opts.retry)


def _stored(outcome: CollectionOutcome) -> dict[str, Any]:
    keep = ("source", "target", "kind", "strategy", "run_id", "status", "source_count",
            "target_count", "verification", "error", "live")
    return {k: getattr(outcome, k) for k in keep} | {"option_problems": outcome.option_problems}


def _masked(endpoint: Endpoint) -> str:
    """The hosts only (never credentials)."""
    return endpoint.host_key()


async def _catalog(client: Any, selection: Selection) -> dict[str, dict[str, dict[str, Any]]]:
    """Every database on the source and its collections' `listCollections` entries (only
    the databases that can be selected are listed in full)."""
    names = await client.list_database_names()
    if selection.all_databases or not selection.source_dbs:
        wanted = set(names) - SYSTEM_DATABASES
    else:
        wanted = set(selection.source_dbs) & set(names)
    catalog: dict[str, dict[str, dict[str, Any]]] = {db: {} for db in names}
    for db in wanted:
        async for info in await client[db].list_collections():
            catalog[db][info["name"]] = dict(info)
    return catalog

