"""`dataworks generate`: parse options, call `dataworks.generators.run.generate`, print."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from dataworks.cli.common import CommonOptions, command_options, with_env
from dataworks.cli.monitoring_options import (
    KIND_HELP,
    METRICS_FILE_HELP,
    PANEL,
    ServerKind,
    print_request_units,
)
from dataworks.core.stop import stop_on_signals
from dataworks.errors import UserError
from dataworks.generators.run import GenerationReport, generate, preview
from dataworks.monitoring.metrics import RunMetrics
from dataworks.monitoring.session import monitor_run

T = TypeVar("T")
log = logging.getLogger("dataworks.generate")


CONNECTION = "Target (override settings)"
RUN = "Run"


@command_options
def generate_command(
    source: str = typer.Option(..., "--source", "-s", help="Generator .py file "
                               "(PATH or PATH:ClassName) or JSON template."),
    total: int | None = typer.Option(None, "--total", "-n", help="Documents to generate "
                                     "(default GEN_TOTAL_DOCUMENTS)."),
    uri: str | None = typer.Option(None, "--target-uri", "--uri", help=with_env(
        "Target connection string.", "GEN_DB_CONNECTION_STRING"), rich_help_panel=CONNECTION),
    db: str | None = typer.Option(None, "--target-db", "--db", help=with_env(
        "Target database.", "GEN_DB_NAME"), rich_help_panel=CONNECTION),
    collection: str | None = typer.Option(None, "--target-collection", "--collection",
                                          help=with_env("Target collection.",
                                                        "GEN_DB_COLLECTION"),
                                          rich_help_panel=CONNECTION),
    seed: int | None = typer.Option(None, "--seed", help="Same seed and batch size: same "
                                    "documents, whatever the worker count."),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1, help="Documents per "
                                          "insert (default GEN_BATCH_SIZE)."),
    workers: int | None = typer.Option(None, "--generation-workers", "--workers", min=0,
                                       help="Generation processes (default "
                                       "FRAMEWORK_GENERATION_WORKERS; 0 = in this process).",
                                       rich_help_panel=RUN),
    write_workers: int | None = typer.Option(None, "--insert-workers", "--write-workers",
                                             min=1, help="Concurrent inserts (default "
                                             "FRAMEWORK_WRITE_WORKERS).", rich_help_panel=RUN),
    drop: bool = typer.Option(False, "--drop-target", "--drop", help="Drop the target "
                              "collection first (never implied).", rich_help_panel=RUN),
    force_from_start: bool = typer.Option(False, "--force-from-start", help="Discard the "
                                          "saved run and start over (with --drop-target when "
                                          "the collection holds its documents).",
                                          rich_help_panel=RUN),
    resume: bool = typer.Option(False, "--resume", hidden=True, help="Accepted for old "
                                "scripts; resuming is the default."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Generate and encode, write nothing "
                                 "(measures the generator).", rich_help_panel=RUN),
    preview_count: int | None = typer.Option(None, "--preview", min=1, help="Print N documents "
                                             "as extended JSON, write nothing."),
    checkpoint_store: str = typer.Option("target", "--checkpoint-store", help="Where resume "
                                         "state lives: target or file:PATH.",
                                         rich_help_panel=RUN),
    metrics_file: Path | None = typer.Option(None, "--metrics-file", help=METRICS_FILE_HELP,
                                             rich_help_panel=PANEL),
    target_kind: ServerKind = typer.Option(ServerKind.auto, "--target-kind",
                                           help=f"Target server kind: {KIND_HELP}",
                                           rich_help_panel=PANEL),
    *,
    common: CommonOptions,
) -> None:
    """Generate documents from a generator file or JSON template into a collection.

    Resumable: after an interruption run the same command again; it continues to exactly
    --total. A finished run says "nothing to do".
    """
    if preview_count is not None:
        for line in preview(source, preview_count, seed):
            typer.echo(line)
        return
    if dry_run and (resume or force_from_start):
        raise UserError("--dry-run writes nothing, so there is no run to resume or restart")
    settings = common.settings(
        params={"gen_db_connection_string": "uri", "gen_db_name": "db",
                "gen_db_collection": "collection"},
        gen_db_connection_string=uri, gen_db_name=db, gen_db_collection=collection,
    )
    metrics = RunMetrics()

    async def run() -> GenerationReport:
        async with monitor_run(metrics, label="generate", metrics_file=metrics_file) as collector:
            report = await generate(
                settings, source, total=total, seed=seed, batch_size=batch_size,
                workers=workers, write_workers=write_workers, drop=drop, dry_run=dry_run,
                force_from_start=force_from_start, checkpoint_store=checkpoint_store,
                progress=not common.quiet, metrics=metrics, target_kind=target_kind.value,
            )
            collector.attach_report({**dataclasses.asdict(report), "status": report.status,
                                     "documents": report.documents})
            return report

    report = run_async(run)
    typer.echo(report.summary())  # the summary is the command's output: stdout
    print_request_units(metrics)


def run_async(make: Callable[[], Awaitable[T]]) -> T:
    """asyncio.run, where Ctrl-C or SIGTERM saves the checkpoint and exits 130; a second
    press stops at once (one line says what that means for the checkpoint)."""

    async def main() -> Any:
        task = asyncio.current_task()
        assert task is not None
        with stop_on_signals(task.cancel, "saving the checkpoint"):
            return await make()

    return asyncio.run(main())


def register(app: typer.Typer) -> None:
    app.command("generate")(generate_command)


