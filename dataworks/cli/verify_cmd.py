"""`dataworks verify`: prove the target equals the source (exit 0 equal, 1 different).

Also opens both sides for `indexes`, the source as a `ReadOnlyCollection`, so these commands
cannot write to it.
"""

# No `from __future__ import annotations`: typer reads these annotations at runtime.

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError
from rich.console import Console
from rich.table import Table

from dataworks.cli.common import CommonOptions, command_options, mask_secrets, output_console
from dataworks.cli.endpoint_options import endpoint_options
from dataworks.core.clients import ReadOnlyCollection, check_reachable, connect
from dataworks.core.endpoints import source_endpoint, target_endpoint
from dataworks.core.suggest import missing_collection
from dataworks.errors import RunFailed
from dataworks.migrations.loading import load_strategy
from dataworks.migrations.strategy import StrategyContext
from dataworks.monitoring.progress import show_phase
from dataworks.verify import Transform, VerifyMode, VerifyReport, verify
from dataworks.verify.rawdocs import display_id
from dataworks.verify.report import DISPLAY_LIMIT

T = TypeVar("T")


@asynccontextmanager
async def open_sides(common: CommonOptions, endpoints: dict[str, Any]) -> Any:
    """Yield (source, target); a source collection that does not exist is a user error.
    `endpoints`: settings overrides from `@endpoint_options`."""
    settings = common.settings(**endpoints)
    source_ep, target_ep = source_endpoint(settings), target_endpoint(settings)
    source_client, target_client = connect(source_ep), connect(target_ep)
    try:
        await check_reachable(source_client, source_ep, side="source")
        await check_reachable(target_client, target_ep, side="target")
        source = ReadOnlyCollection(source_client[source_ep.db][source_ep.collection])
        target: AsyncCollection[Any] = target_client[target_ep.db][target_ep.collection]
        if not await source.exists():
            raise await missing_collection(source_client, source_ep, side="source")
        yield source, target
    finally:
        await source_client.close()
        await target_client.close()


def run_async(body: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine; driver errors become one masked line and exit code 1."""
    try:
        return asyncio.run(body())  # type: ignore[arg-type]
    except PyMongoError as exc:
        text = str(exc).split(" (configured timeouts")[0].split(", Timeout:")[0]
        raise RunFailed(f"database error: {mask_secrets(text)}") from exc


def print_report(report: VerifyReport, console: Console) -> None:
    """Summary table, then the first 100 `_id`s of each kind of difference."""
    verdict = "[green]EQUAL[/]" if report.equal else "[red]DIFFERENT[/]"
    table = Table(title=f"verify --mode {report.mode.value}: {verdict}")
    table.add_column("")
    table.add_column("source", justify="right")
    table.add_column("target", justify="right")
    count_label = "sampled" if report.mode is VerifyMode.SAMPLE else "documents"
    table.add_row("namespace", report.source, report.target)
    table.add_row(count_label, _n(report.source_count), _n(report.target_count))
    if report.mode is not VerifyMode.COUNT:
        table.add_row("compared / identical", _n(report.compared), _n(report.matched))
        table.add_row("missing on target", "", _n(report.missing_count))
        if report.mode is VerifyMode.HASH:
            table.add_row("extra on target", "", _n(report.extra_count))
        table.add_row("changed", "", _n(report.changed_count))
    table.caption = f"{report.method}; {report.seconds:.1f}s"
    console.print(table)
    for label, ids, count in (
        ("missing on target", report.missing_ids, report.missing_count),
        ("extra on target", report.extra_ids, report.extra_count),
        ("changed", report.changed_ids, report.changed_count),
    ):
        if ids:
            shown = ", ".join(display_id(v) for v in ids[:DISPLAY_LIMIT])
            in_report = len(ids) - DISPLAY_LIMIT
            more = f" (+{in_report:,} more in --report)" if in_report > 0 else ""
            console.print(f"[bold]{label}[/] ({count:,}): {shown}{more}")
    for note in report.notes:
        console.print(f"note: {note}")


async def strategy_transform(
    spec: str | None, source: ReadOnlyCollection, target: AsyncCollection[Any]
) -> Transform | None:
    """The strategy's `transform` (after its `on_start`), or None when it does not
    transform: then documents are compared as raw bytes."""
    if not spec:
        return None
    strategy_cls, _ = load_strategy(spec)
    if not strategy_cls.transforms():
        return None
    context = StrategyContext(
        source=source,
        source_namespace=source.full_name,
        target_namespace=target.full_name,
        batch_size=1000,
    )
    strategy = strategy_cls(context)
    await strategy.on_start()
    return strategy.transform


def _n(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def verify_command(
    mode: Annotated[VerifyMode, typer.Option("--mode", help="count, hash or sample.")] = (
        VerifyMode.COUNT
    ),
    sample_size: Annotated[
        int, typer.Option("--sample-size", min=1, help="Documents to sample (--mode sample).")
    ] = 1000,
    report_path: Annotated[
        Path | None, typer.Option("--report", help="Write the full report (every _id) as JSON.")
    ] = None,
    partitions: Annotated[
        int | None,
        typer.Option("--partitions", min=1, help="_id ranges read in parallel (--mode hash)."),
    ] = None,
    strategy: Annotated[
        str | None,
        typer.Option("--strategy", help="Strategy file PATH[:ClassName] the migration used: "
                     "its transform is applied to the source side (hash, sample)."),
    ] = None,
    *,
    endpoints: dict[str, Any],
    common: CommonOptions,
) -> None:
    """Compare source and target: counts, every document (hash) or a random sample.
    Exit code 0 when equal, 1 when different, 2 on bad input."""
    parallelism = common.settings(**endpoints).parallel_cursors

    async def body() -> VerifyReport:
        async with open_sides(common, endpoints) as (source, target):
            transform = await strategy_transform(strategy, source, target)
            # hash: the source's size from its metadata, for the rate's ETA (sample sets its
            # own total per step; count counts partitions)
            total = await source.estimated_document_count() if mode is VerifyMode.HASH \
                else None
            async with show_phase(f"verifying ({mode.value})", total=total,
                                  enabled=not common.quiet):
                return await verify(
                    source, target, mode, sample_size=sample_size, partitions=partitions,
                    parallelism=parallelism, transform=transform,
                )

    report = run_async(body)
    if report_path is not None:
        report.write_json(report_path)
    if not common.quiet or not report.equal:
        print_report(report, output_console())
    if not report.equal:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("verify")(endpoint_options(command_options(verify_command)))
