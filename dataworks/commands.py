"""One plain async function per verb: what the CLI calls, and what Python users call.

These functions never print; they return report objects and raise `DataWorksError`s.
"""

from __future__ import annotations

from pathlib import Path

from dataworks.config.settings import Settings
from dataworks.core.endpoints import source_endpoint, target_endpoint
from dataworks.core.retry import RetryPolicy
from dataworks.migrations.engine import MigrationEngine, MigrationOptions
from dataworks.migrations.loading import load_strategy
from dataworks.migrations.report import MigrationReport
from dataworks.monitoring.metrics import RunMetrics


async def migrate(
    settings: Settings,
    *,
    strategy: str | None = None,
    checkpoint_store: str = "target",
    force_from_start: bool = False,
    drop_target: bool = False,
    unacknowledged: bool = False,
    metrics: RunMetrics | None = None,
    handle_signals: bool = False,
    run_dir: Path = Path(".dataworks/runs"),
    source_kind: str = "auto",
    target_kind: str = "auto",
) -> MigrationReport:
    """Copy the source collection to the target, resuming from a checkpoint if one exists.

    `source_kind`/`target_kind` ("cosmos", "mongodb", "auto"): Cosmos DB sides have their
    request units counted into `metrics.request_units`.
    """
    strategy_cls, strategy_ref = load_strategy(strategy)
    options = MigrationOptions(
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
        unacknowledged=unacknowledged,
        retry=RetryPolicy(
            max_attempts=settings.retry_max_attempts, max_seconds=settings.retry_max_seconds
        ),
        run_dir=run_dir,
        handle_signals=handle_signals,
        source_kind=source_kind,
        target_kind=target_kind,
    )
    return await MigrationEngine(options, metrics).run()
