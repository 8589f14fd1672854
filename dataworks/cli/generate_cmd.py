"""`dataworks generate`: parse options, call `dataworks.generators.run.generate`, print."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from dataworks.cli.common import CommonOptions, command_options, err_console
from dataworks.cli.monitoring_options import (
    KIND_HELP,
    METRICS_FILE_HELP,
    PANEL,
    ServerKind,
    print_request_units,
)
from dataworks.generators.run import GenerationReport, generate, preview
from dataworks.monitoring.metrics import RunMetrics
from dataworks.monitoring.session import monitor_run

T = TypeVar("T")


@command_options
def generate_command(
    source: str = typer.Option(..., "--source", "-s", help="Generator .py file "
                               "(PATH or PATH:ClassName) or JSON template."),
    total: int | None = typer.Option(None, "--total", "-n", help="Documents to generate "
                                     "(default GEN_TOTAL_DOCUMENTS)."),
    uri: str | None = typer.Option(None, "--uri", help="Target connection string "
                                   "(default GEN_DB_CONNECTION_STRING)."),
    db: str | None = typer.Option(None, "--db", help="Database (default GEN_DB_NAME)."),
    collection: str | None = typer.Option(None, "--collection",
                                          help="Collection (default GEN_DB_COLLECTION)."),
    seed: int | None = typer.Option(None, "--seed", help="Same seed and batch size: same "
                                    "documents, whatever the worker count."),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1, help="Documents per "
                                          "insert (default GEN_BATCH_SIZE)."),
    workers: int | None = typer.Option(None, "--workers", min=0, help="Generation processes "
                                       "(default FRAMEWORK_GENERATION_WORKERS; 0 = in this "
                                       "process)."),
    write_workers: int | None = typer.Option(None, "--write-workers", min=1, help="Concurrent "
                                             "inserts (default FRAMEWORK_WRITE_WORKERS)."),
    drop: bool = typer.Option(False, "--drop", help="Drop the collection first."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Generate and encode, write nothing "
                                 "(measures the generator)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted run into "
                                "this collection."),
    preview_count: int | None = typer.Option(None, "--preview", min=1, help="Print N documents "
                                             "as extended JSON, write nothing."),
    checkpoint_store: str = typer.Option("target", "--checkpoint-store", help="Where resume "
                                         "state lives: target or file:PATH."),
    metrics_file: Path | None = typer.Option(None, "--metrics-file", help=METRICS_FILE_HELP,
                                             rich_help_panel=PANEL),
    target_kind: ServerKind = typer.Option(ServerKind.auto, "--target-kind",
                                           help=f"Target server kind: {KIND_HELP}",
                                           rich_help_panel=PANEL),
    *,
    common: CommonOptions,
) -> None:
    """Generate documents from a generator file or JSON template into a collection."""
    if preview_count is not None:
        for line in preview(source, preview_count, seed):
            typer.echo(line)
        return
    settings = common.settings(
        gen_db_connection_string=uri, gen_db_name=db, gen_db_collection=collection,
    )
    metrics = RunMetrics()

    async def run() -> GenerationReport:
        async with monitor_run(metrics, label="generate", metrics_file=metrics_file) as collector:
            report = await generate(
                settings, source, total=total, seed=seed, batch_size=batch_size,
                workers=workers, write_workers=write_workers, drop=drop, dry_run=dry_run,
                resume=resume, checkpoint_store=checkpoint_store, progress=not common.quiet,
                metrics=metrics, target_kind=target_kind.value,
            )
            collector.attach_report({**dataclasses.asdict(report), "status": "completed",
                                     "documents": report.documents})
            return report

    report = run_async(run)
    if common.log_format.value == "json":  # stderr carries only JSON lines
        typer.echo(report.summary())
        print_request_units(metrics)
    else:
        err_console.print(report.summary(), markup=False)
        print_request_units(metrics, err_console)


def run_async(make: Callable[[], Awaitable[T]]) -> T:
    """asyncio.run, with SIGTERM treated like Ctrl-C (checkpoint saved, exit 130)."""

    async def main() -> Any:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        if task is not None:
            try:
                loop.add_signal_handler(signal.SIGTERM, task.cancel)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - not on Windows
                pass
        return await make()

    return asyncio.run(main())


def register(app: typer.Typer) -> None:
    app.command("generate")(generate_command)


