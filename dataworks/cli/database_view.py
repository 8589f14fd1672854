"""`dataworks migrate` of many collections: when the command line asks for a database run,
run it with its progress display, print the summary table, write `--report`, exit."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from rich.table import Table

from dataworks import commands
from dataworks.cli.common import CommonOptions, mask_secrets, output_console
from dataworks.config.settings import Settings, describe_settings
from dataworks.errors import Interrupted, RunFailed, UserError
from dataworks.migrations.database import DatabaseRun
from dataworks.migrations.database_report import DatabaseReport
from dataworks.migrations.namespaces import Selection
from dataworks.monitoring.database_progress import show_database_progress
from dataworks.monitoring.metrics import RunMetrics
from dataworks.monitoring.session import monitor_run


def database_selection(common: CommonOptions, settings: Settings, endpoints: dict[str, str],
                       source_dbs: list[str], *, all_databases: bool,
                       include: list[str] | None, exclude: list[str] | None,
                       rename_from: list[str] | None, rename_to: list[str] | None,
                       strategy_map: str | None,
                       parallel_collections: int | None) -> Selection | None:
    """The selection when the command line asks for many collections, else None (the
    single-collection form, unchanged)."""
    patterns = bool(include or exclude or rename_from or rename_to)
    single_db_whole = (len(source_dbs) == 1 and "mig_source_db_collection" not in endpoints
                       and not _collection_configured(common, settings, endpoints))
    wants_database = (all_databases or patterns or strategy_map is not None
                      or len(source_dbs) > 1 or single_db_whole
                      or parallel_collections is not None)
    if not wants_database:
        return None
    if "mig_source_db_collection" in endpoints:
        raise UserError("--source-collection names one collection, but the other options ask "
                        "for many", hint="leave out --source-collection, or the database "
                        "options (--all-databases, --ns-*, --strategy-map, a second --source-db)")
    if "mig_target_db_collection" in endpoints:
        raise UserError("--target-collection cannot name the target of many collections",
                        hint="use --target-db, or --ns-from/--ns-to to rename")
    dbs = tuple(source_dbs)
    if not dbs and not all_databases and not include:
        dbs = (settings.mig_source_db_name or settings.gen_db_name,)
    return Selection(source_dbs=dbs, all_databases=all_databases, include=tuple(include or ()),
                     exclude=tuple(exclude or ()), rename_from=tuple(rename_from or ()),
                     rename_to=tuple(rename_to or ()), target_db=settings.mig_target_db_name)


def _collection_configured(common: CommonOptions, settings: Settings,
                           endpoints: dict[str, str]) -> bool:
    """MIG_SOURCE_DB_COLLECTION set in the environment or env file: the single form."""
    for row in describe_settings(settings, env_file=common.env_file, overrides=endpoints):
        if row.name == "MIG_SOURCE_DB_COLLECTION":
            return not row.origin.startswith(("built-in", "fallback", "profile"))
    return False


def run_database(settings: Settings, selection: Selection, *, common: CommonOptions,
                 strategy: str | None, strategy_map: str | None,
                 parallel_collections: int | None, report_file: str | None,
                 metrics_file: str | None, options: dict[str, Any]) -> None:
    from dataworks.cli.migrate_cmd import resume_hint

    metrics = RunMetrics()
    holder: list[DatabaseRun] = []
    report: DatabaseReport | None = None

    async def run() -> DatabaseReport:
        current = (lambda: holder[0] if holder else None)
        async with monitor_run(metrics, label="migrate", metrics_file=metrics_file) as collector, \
                show_database_progress(current, enabled=not common.quiet):
            result = await commands.migrate_database(
                settings, selection, strategy=strategy, strategy_map=strategy_map,
                parallel_collections=parallel_collections, metrics=metrics, run=holder,
                **options)
            collector.attach_report(result.to_dict())
            return result

    try:
        report = asyncio.run(run())
    except Interrupted as exc:
        exc.hint = resume_hint(settings, common)
        if holder and holder[0].report is not None:
            _finish(holder[0].report, report_file)
        raise
    _finish(report, report_file)
    if not report.ok:
        bad = report.problems()
        raise RunFailed(
            f"{len(bad)} of {len(report.collections)} collections are not right: "
            + ", ".join(f"{c.source} ({_why(c)})" for c in bad[:10]),
            hint="see the table above" + (f" and {report_file}" if report_file else ""))


def _finish(report: DatabaseReport, report_file: str | None) -> None:
    render_database_report(report)
    if report_file:
        write_report(report_file, report.to_dict())


def _why(c: Any) -> str:
    if c.error:
        return c.status
    if c.option_problems:
        return "options not copied"
    if c.verification is not None and not c.verification.get("equal"):
        return "differs"
    if c.problems:
        return "rejected or kept documents"
    return c.status


def render_database_report(report: DatabaseReport) -> None:
    console = output_console()
    table = Table(title=f"database run {report.run_id}")
    columns = ("collection", "target", "status", "source count", "target count", "migrated",
               "already present", "replaced", "rejected", "verification")
    for name in columns:
        table.add_column(name, overflow="fold",
                         justify="right" if "count" in name or name in (
                             "migrated", "already present", "replaced", "rejected") else "left")

    def n(value: int | None) -> str:
        return "?" if value is None else f"{value:,}"

    for c in report.collections:
        status = c.status if c.ok or c.status in ("interrupted", "not started") \
            else f"[bold red]{c.status}[/]"
        target = c.target if c.target != c.source else "="
        table.add_row(c.source, target, status, n(c.source_count), n(c.target_count),
                      n(c.migrated), n(c.already_present), n(c.replaced), n(c.rejected),
                      c.verdict())
    t = report.totals()
    table.add_row("[bold]total[/]", "", f"{sum(c.ok for c in report.collections)}/"
                  f"{len(report.collections)} right", n(t["source_count"]),
                  n(t["target_count"]), n(t["migrated"]), n(t["already_present"]),
                  n(t["replaced"]), n(t["rejected"]), "", end_section=True)
    console.print(table)
    if any(c.live for c in report.collections):
        console.print(live_table(report))
    for c in report.collections:
        for problem in [*c.option_problems, *c.problems]:
            console.print(f"[red]{c.source}:[/] {problem}", markup=True)
        if c.error:
            console.print(f"[red]{c.source}:[/] {mask_secrets(c.error)}", markup=True)
        for warning in c.warnings:
            console.print(f"[yellow]{c.source}:[/] {warning}", markup=True)
        if c.dead_letter_file and not c.problems:
            console.print(f"{c.source}: rejected documents in {c.dead_letter_file}")
    if report.duration_s:
        console.print(f"{report.totals()['migrated']:,} documents migrated in "
                      f"{report.duration_s:,.1f} s ({report.docs_per_second:,.0f} docs/s, "
                      f"{report.parallel_collections} collections at a time)")


def live_table(report: DatabaseReport) -> Table:
    """--live: what each collection's change stream brought, and whether it cut over."""
    table = Table(title="live changes per collection")
    for name in ("collection", "events applied (this run)", "events applied (in all)",
                 "resumed from event", "deleted by _id check", "lag s", "cut over"):
        table.add_column(name, justify="left" if name == "collection" else "right")

    def n(value: Any) -> str:
        return f"{value:,}" if isinstance(value, int) else "?" if value is None else str(value)

    for c in report.collections:
        if not c.live:
            continue
        live = c.live
        table.add_row(c.source, n(live.get("events_applied")), n(live.get("events_applied_total")),
                      n(live.get("resumed_from_event")), n(live.get("deleted_by_id_check", 0)),
                      n(live.get("lag_s")), "yes" if live.get("cut_over") else "no")
    return table


def write_report(path: str, data: dict[str, Any]) -> None:
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(mask_secrets(json.dumps(data, indent=2, default=str)), encoding="utf-8")
