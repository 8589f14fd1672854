"""`dataworks indexes compare|copy`: the target's indexes against the source's, and copying
them (Cosmos DB system and `_ts` indexes are skipped with the reason)."""

# No `from __future__ import annotations`: typer reads these annotations at runtime.

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from dataworks.cli.common import CommonOptions, command_options, output_console
from dataworks.cli.endpoint_options import endpoint_options
from dataworks.cli.verify_cmd import open_sides, run_async
from dataworks.monitoring.progress import show_phase
from dataworks.indexes import (
    IndexComparison,
    IndexCopyReport,
    IndexStatus,
    compare_indexes,
    copy_indexes,
)

indexes_app = typer.Typer(help="Compare and copy indexes.", no_args_is_help=True)

TsField = Annotated[
    str | None,
    typer.Option("--ts-field", help="Build indexes declared on Cosmos DB's _ts on this field."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
_STYLE = {
    IndexStatus.SAME: "green",
    IndexStatus.MISSING: "red",
    IndexStatus.EXTRA: "yellow",
    IndexStatus.DIFFERENT: "red",
    IndexStatus.SKIPPED: "dim",
}


def print_comparison(comparison: IndexComparison, console: Console) -> None:
    verdict = "[green]EQUAL[/]" if comparison.equal else "[red]DIFFERENT[/]"
    table = Table(
        title=f"indexes {comparison.source_namespace} → {comparison.target_namespace}: {verdict}"
    )
    for column in ("status", "name", "key", "detail"):
        table.add_column(column)
    for row in comparison.rows:
        style = _STYLE[row.status]
        table.add_row(f"[{style}]{row.status.value}[/]", row.name, row.key, row.detail)
    console.print(table)
    for note in comparison.notes:
        console.print(f"note: {note}")


def print_copy(report: IndexCopyReport, console: Console) -> None:
    table = Table(title="indexes copy")
    table.add_column("outcome")
    table.add_column("name")
    table.add_column("detail")
    for name in report.created:
        table.add_row("[green]created[/]", name, "")
    for name in report.already_present:
        table.add_row("present", name, "already on the target")
    for skipped in report.skipped:
        table.add_row("[dim]skipped[/]", skipped.name, skipped.reason)
    for name, message in report.failed.items():
        table.add_row("[red]failed[/]", name, message)
    console.print(table)
    for note in report.notes:
        console.print(f"note: {note}")


@indexes_app.command("compare")
@endpoint_options
@command_options
def compare_command(
    ts_field: TsField = None,
    as_json: AsJson = False,
    *,
    endpoints: dict[str, Any],
    common: CommonOptions,
) -> None:
    """Table of missing, extra, different and skipped indexes. Exit 0 equal, 1 different."""
    async def body() -> IndexComparison:
        async with open_sides(common, endpoints) as (source, target):
            return await compare_indexes(source, target, ts_field=ts_field)

    comparison = run_async(body)
    if as_json:
        typer.echo(json.dumps(comparison.to_dict(), indent=2, default=str))
    else:
        print_comparison(comparison, output_console())
    if not comparison.equal:
        raise typer.Exit(1)


@indexes_app.command("copy")
@endpoint_options
@command_options
def copy_command(
    ts_field: TsField = None,
    as_json: AsJson = False,
    *,
    endpoints: dict[str, Any],
    common: CommonOptions,
) -> None:
    """Create the source's indexes on the target, then compare. Exit 1 if any failed."""
    async def body() -> tuple[IndexCopyReport, IndexComparison]:
        async with open_sides(common, endpoints) as (source, target):
            async with show_phase("copying indexes", enabled=not common.quiet):
                report = await copy_indexes(source, target, ts_field=ts_field)
            return report, await compare_indexes(source, target, ts_field=ts_field)

    report, comparison = run_async(body)
    if as_json:
        payload = {"copy": report.to_dict(), "compare": comparison.to_dict()}
        typer.echo(json.dumps(payload, indent=2, default=str))
    else:
        console = output_console()
        print_copy(report, console)
        print_comparison(comparison, console)
    if not report.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(indexes_app, name="indexes")
