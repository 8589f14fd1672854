"""One plain async function per verb: what the CLI calls, and what Python users call.

These functions never print; they return report objects and raise `DataWorksError`s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dataworks.checkpoints.store import check_store_spec
from dataworks.config.settings import Settings
from dataworks.core.endpoints import source_endpoint, target_endpoint
from dataworks.core.retry import RetryPolicy
from dataworks.errors import UserError
from dataworks.migrations.database import DatabaseOptions, DatabaseRun
from dataworks.migrations.database_report import DatabaseReport
from dataworks.migrations.engine import MigrationEngine, MigrationOptions
from dataworks.migrations.finishing import VERIFY_MODES, FinishingOptions
from dataworks.migrations.loading import load_strategy
from dataworks.migrations.namespaces import Selection
from dataworks.migrations.report import MigrationReport
from dataworks.migrations.strategy import BaseMigrationStrategy, DefaultStrategy
from dataworks.migrations.strategy_map import read_strategy_map
from dataworks.monitoring.metrics import RunMetrics


async def migrate(
    settings: Settings,
    *,
    strategy: str | None = None,
    checkpoint_store: str = "target",
    force_from_start: bool = False,
    drop_target: bool = False,
    merge: bool = False,
    keep_existing: bool = False,
    retry_rejected: bool = False,
    unacknowledged: bool = False,
    metrics: RunMetrics | None = None,
    handle_signals: bool = False,
    run_dir: Path = Path(".dataworks/runs"),
    source_kind: str = "auto",
    target_kind: str = "auto",
    verify: str = "count",
    sample_size: int = 1000,
    create_indexes: bool = False,
    disable_indexes: bool = False,
    transform_workers: int | None = None,
    repair: bool = False,
    repair_from: Path | None = None,
    delete_extra: bool = False,
) -> MigrationReport:
    """Copy the source collection to the target, resuming from a checkpoint if one exists.

    A first run into a target collection that already holds documents is refused
    (`UserError`) unless `drop_target` (start clean) or `merge` (copy into it) is given.
    A target document with the same `_id` but other bytes is replaced by the source's version
    (`report.replaced`), or kept with `keep_existing` (`report.kept_different`, listed in
    `report.kept_ids_file`). `report.problems()` says what keeps the target from being the
    source's copy (rejected documents, kept ones); the CLI exits 1 on them.
    `retry_rejected` first sends the documents of the dead-letter file again (read from the
    source, through the strategy) and keeps in it only those refused again.

    After the load: `disable_indexes` builds the secondary indexes it took off the empty
    target, `create_indexes` copies the source's indexes, and `verify` ("count", "hash",
    "sample" or "none") checks the result into `report.verification`.

    `source_kind`/`target_kind` ("cosmos", "mongodb", "auto"): Cosmos DB sides have their
    request units counted into `metrics.request_units`.

    `transform_workers` (default: settings.mig_transform_workers): processes that run a
    transforming strategy's `transform`; 0 runs it in this process.
    `repair` (once the copy has finished): re-copy the `_id`s the last verification found
    missing or changed (listed in runs/<run_id>/differences.json, or in `repair_from`, a
    `dataworks verify --report` file), delete extra target documents only with
    `delete_extra`, then verify again.
    """
    check_store_spec(checkpoint_store)  # unwritable: refused before any document is read
    if delete_extra and not (repair or repair_from):
        raise UserError("--delete-extra only works with --repair",
                        hint="add --repair (documents are deleted only by a repair)")
    strategy_cls, strategy_ref = load_strategy(strategy)
    options = _migration_options(
        settings, strategy_cls=strategy_cls, strategy_ref=strategy_ref,
        checkpoint_store=checkpoint_store, force_from_start=force_from_start,
        drop_target=drop_target, merge=merge, keep_existing=keep_existing,
        retry_rejected=retry_rejected,
        unacknowledged=unacknowledged, handle_signals=handle_signals, run_dir=run_dir, source_kind=source_kind, target_kind=target_kind, verify=verify,
        sample_size=sample_size, create_indexes=create_indexes, disable_indexes=disable_indexes,
        transform_workers=transform_workers,
        repair=repair, repair_from=repair_from, delete_extra=delete_extra)
    return await MigrationEngine(options, metrics).run()


async def migrate_database(
    settings: Settings,
    selection: Selection,
    *,
    strategy: str | None = None,
    strategy_map: str | None = None,
    parallel_collections: int | None = None,
    metrics: RunMetrics | None = None,
    run: list[DatabaseRun] | None = None,
    live: bool = False,
    cutover_after_idle: float | None = None,
    delete_check_interval: float = 60.0,
    cutover: bool = False,
    **options: Any,
) -> Any:
    """Copy many collections (see `migrations.namespaces` for `selection`) in one run; each
    collection resumes from its own checkpoint. `options` are `migrate`'s keyword options.
    With `strategy_map`, the first matching entry decides; `strategy` is for the rest.

    `run`, when given, receives the `DatabaseRun` before it starts (progress displays read it).
    With `live`, every collection follows its change stream after its copy until the run cuts
    over (see `migrations.database_live`). With `cutover`, ask that running live run to
    cut over instead, and return its run id.
    """
    from dataworks.migrations.live import LiveOptions

    check_store_spec(options.get("checkpoint_store", "target"))
    rules = read_strategy_map(strategy_map) if strategy_map else None
    base = _migration_options(settings, strategy_cls=DefaultStrategy, strategy_ref="default",
                              **options)
    database_run = DatabaseRun(DatabaseOptions(
        base=base, selection=selection, strategy=strategy, strategy_map=rules,
        parallel_collections=parallel_collections or settings.mig_parallel_collections,
        live=LiveOptions(cutover_after_idle=cutover_after_idle,
                         delete_check_interval=delete_check_interval) if live else None,
    ), metrics)
    if run is not None:
        run.append(database_run)
    if cutover:
        from dataworks.migrations.database_live import request_cutover

        return await request_cutover(database_run)
    return await database_run.run()


def _migration_options(
    settings: Settings,
    *,
    strategy_cls: type[BaseMigrationStrategy],
    strategy_ref: str,
    checkpoint_store: str = "target",
    force_from_start: bool = False,
    drop_target: bool = False,
    merge: bool = False,
    keep_existing: bool = False,
    retry_rejected: bool = False,
    unacknowledged: bool = False,
    handle_signals: bool = False,
    run_dir: Path = Path(".dataworks/runs"),
    source_kind: str = "auto",
    target_kind: str = "auto",
    verify: str = "count",
    sample_size: int = 1000,
    create_indexes: bool = False,
    disable_indexes: bool = False,
    transform_workers: int | None = None,
    repair: bool = False,
    repair_from: Path | None = None,
    delete_extra: bool = False,
) -> MigrationOptions:
    return MigrationOptions(
        source=source_endpoint(settings),
        target=target_endpoint(settings),
        strategy_cls=strategy_cls,
        strategy_ref=strategy_ref,
        batch_size=settings.mig_batch_size,
        workers=settings.max_insert_workers,
        parallel_cursors=settings.parallel_cursors,
        checkpoint_store=checkpoint_store,
        checkpoint_interval=settings.checkpoint_interval,
        force_from_start=force_from_start,
        drop_target=drop_target,
        repair=repair or repair_from is not None,
        repair_from=repair_from,
        delete_extra=delete_extra,
        merge=merge,
        keep_existing=keep_existing,
        retry_rejected=retry_rejected,
        unacknowledged=unacknowledged,
        retry=RetryPolicy(
            max_attempts=settings.retry_max_attempts, max_seconds=settings.retry_max_seconds
        ),
        throttle_recovery_s=settings.throttle_recovery_seconds,
        ru_per_second=settings.mig_ru_per_second,
        run_dir=run_dir,
        handle_signals=handle_signals,
        source_kind=source_kind,
        target_kind=target_kind,
        transform_workers=(settings.mig_transform_workers if transform_workers is None
                           else transform_workers),
        finishing=FinishingOptions(
            verify_mode=_verify_mode(verify),
            sample_size=sample_size,
            create_indexes=create_indexes,
            disable_indexes=disable_indexes,
            parallelism=settings.parallel_cursors,
        ),
    )


def _verify_mode(mode: str) -> str:
    if mode not in VERIFY_MODES:
        raise UserError(f"unknown --verify mode '{mode}'", hint=f"use one of: {', '.join(VERIFY_MODES)}")
    return mode


async def migrate_live(
    settings: Settings,
    *,
    strategy: str | None = None,
    cutover_after_idle: float | None = None,
    delete_check_interval: float = 60.0,
    metrics: RunMetrics | None = None,
    **options: Any,
) -> MigrationReport:
    """`migrate --live`: copy while the source keeps changing, replay its change stream,
    and with `cutover_after_idle` finish (verified) once no change came for that long.
    `options` are `migrate`'s keyword options (see `dataworks.migrations.live`)."""
    from dataworks.migrations.live import LiveMigration, LiveOptions

    strategy_cls, strategy_ref = load_strategy(strategy)
    base = _migration_options(settings, strategy_cls=strategy_cls, strategy_ref=strategy_ref,
                              **options)
    live = LiveOptions(cutover_after_idle=cutover_after_idle,
                       delete_check_interval=delete_check_interval)
    return await LiveMigration(base, live, metrics).run()


async def request_cutover(settings: Settings, *, strategy: str | None = None,
                          checkpoint_store: str = "target") -> str:
    """`migrate --cutover`: ask the running live migration of this identity to finish once
    caught up (through the checkpoint store). Returns its run id."""
    from dataworks.migrations.live import request_cutover as ask

    strategy_cls, strategy_ref = load_strategy(strategy)
    return await ask(_migration_options(settings, strategy_cls=strategy_cls,
                                        strategy_ref=strategy_ref,
                                        checkpoint_store=checkpoint_store))
