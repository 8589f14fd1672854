"""`dataworks migrate`: parse, build settings, run `commands.migrate`, render the result."""

# No `from __future__ import annotations`: typer reads these annotations at runtime.

import asyncio
import functools
import shlex
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from dataworks import commands
from dataworks.cli.common import CommonOptions, command_options, mask_secrets, output_console
from dataworks.cli.database_view import (
    database_selection,
    run_database,
    write_report,
)
from dataworks.cli.endpoint_options import endpoint_options
from dataworks.cli.monitoring_options import (
    MetricsFileOption,
    ServerKind,
    SourceKindOption,
    TargetKindOption,
    print_request_units,
)
from dataworks.config.settings import Settings, describe_settings
from dataworks.errors import Interrupted, RunFailed, UserError
from dataworks.migrations.report import MigrationReport
from dataworks.monitoring.metrics import RunMetrics
from dataworks.monitoring.progress import show_progress
from dataworks.monitoring.session import monitor_run

PANEL = "Migration"
LIVE_PANEL = "Live migration (copy while the application writes)"
DB_PANEL = "Many collections (a database run)"


class VerifyChoice(str, Enum):
    count = "count"
    hash = "hash"
    sample = "sample"
    none = "none"


@endpoint_options(many_source_dbs=True)
@command_options
def migrate(
    strategy: Annotated[str | None, typer.Option(
        "--strategy", help="Strategy file PATH or PATH:ClassName (default: copy unchanged).",
        rich_help_panel=PANEL)] = None,
    force_from_start: Annotated[bool, typer.Option(
        "--force-from-start", help="Discard this run's checkpoint and start over.",
        rich_help_panel=PANEL)] = False,
    drop_target: Annotated[bool, typer.Option(
        "--drop-target", help="Drop the target collection first (never implied).",
        rich_help_panel=PANEL)] = False,
    merge: Annotated[bool, typer.Option(
        "--merge", help="Copy into a target collection that already holds documents.",
        rich_help_panel=PANEL)] = False,
    keep_existing: Annotated[bool, typer.Option(
        "--keep-existing", help="Where the target holds a different document with the same "
        "_id, keep it (listed in the run's folder; exit 1) instead of replacing it.",
        rich_help_panel=PANEL)] = False,
    retry_rejected: Annotated[bool, typer.Option(
        "--retry-rejected", help="Send the rejected documents (dead letters) again, after "
        "you fixed what refused them; those that land leave the dead-letter file.",
        rich_help_panel=PANEL)] = False,
    checkpoint_store: Annotated[str, typer.Option(
        "--checkpoint-store", help="'target' (dataworks_meta on the target) or file:PATH.",
        rich_help_panel=PANEL)] = "target",
    batch_size: Annotated[int | None, typer.Option(
        "--batch-size", help="Documents per read and insert batch (MIG_BATCH_SIZE).",
        rich_help_panel=PANEL)] = None,
    workers: Annotated[int | None, typer.Option(
        "--insert-workers", "--workers", help="Concurrent inserts (FRAMEWORK_MAX_INSERT_WORKERS).",
        rich_help_panel=PANEL)] = None,
    parallel_cursors: Annotated[int | None, typer.Option(
        "--parallel-cursors", help="Source cursors over _id ranges (FRAMEWORK_PARALLEL_CURSORS).",
        rich_help_panel=PANEL)] = None,
    transform_workers: Annotated[int | None, typer.Option(
        "--transform-workers", min=0, help="Processes that run the strategy's transform "
        "(MIG_TRANSFORM_WORKERS, default: number of CPUs); 0 = in this process.",
        rich_help_panel=PANEL)] = None,
    unacknowledged: Annotated[bool, typer.Option(
        "--unacknowledged", help="w=0 writes: fastest, unproven; forces verification.",
        rich_help_panel=PANEL)] = False,
    metrics_file: MetricsFileOption = None,
    source_kind: SourceKindOption = ServerKind.auto,
    target_kind: TargetKindOption = ServerKind.auto,
    preview: Annotated[int | None, typer.Option(
        "--preview", min=1, help="Transform N source documents and show before/after; "
        "writes nothing.", rich_help_panel=PANEL)] = None,
    json_output: Annotated[bool, typer.Option(
        "--json", help="With --preview: print the preview as extended JSON.",
        rich_help_panel=PANEL)] = False,
    full: Annotated[bool, typer.Option(
        "--full", help="With --preview: every field, not only what the strategy changed.",
        rich_help_panel=PANEL)] = False,
    verify: Annotated[VerifyChoice, typer.Option(
        "--verify", help="Check the result at the end (exit 1 when it differs).",
        rich_help_panel=PANEL)] = VerifyChoice.count,
    sample_size: Annotated[int, typer.Option(
        "--sample-size", min=1, help="Documents checked by --verify sample.",
        rich_help_panel=PANEL)] = 1000,
    create_indexes: Annotated[bool, typer.Option(
        "--create-indexes", help="Copy the source's indexes to the target after the data.",
        rich_help_panel=PANEL)] = False,
    disable_indexes: Annotated[bool, typer.Option(
        "--disable-indexes", help="Load without secondary indexes, build them after the data.",
        rich_help_panel=PANEL)] = False,
    all_databases: Annotated[bool, typer.Option(
        "--all-databases", help="Every database but admin, local, config and the checkpoints'.",
        rich_help_panel=DB_PANEL)] = False,
    ns_include: Annotated[list[str] | None, typer.Option(
        "--ns-include", help="Only namespaces matching this db.collection glob (repeatable).",
        rich_help_panel=DB_PANEL)] = None,
    ns_exclude: Annotated[list[str] | None, typer.Option(
        "--ns-exclude", help="Leave out namespaces matching this glob (repeatable).",
        rich_help_panel=DB_PANEL)] = None,
    ns_from: Annotated[list[str] | None, typer.Option(
        "--ns-from", help="Rename: source pattern with $var$ placeholders (pairs with --ns-to).",
        rich_help_panel=DB_PANEL)] = None,
    ns_to: Annotated[list[str] | None, typer.Option(
        "--ns-to", help="Rename: target pattern using the --ns-from $var$s.",
        rich_help_panel=DB_PANEL)] = None,
    strategy_map: Annotated[str | None, typer.Option(
        "--strategy-map", help="TOML file: strategy and options per namespace, first match wins.",
        rich_help_panel=DB_PANEL)] = None,
    parallel_collections: Annotated[int | None, typer.Option(
        "--parallel-collections", min=1, help="Collections copied at once, largest first "
        "(MIG_PARALLEL_COLLECTIONS); they share the insert workers.",
        rich_help_panel=DB_PANEL)] = None,
    report_file: Annotated[str | None, typer.Option(
        "--report", help="Write the summary (per collection, with totals) as JSON to FILE.",
        rich_help_panel=PANEL)] = None,
    live: Annotated[bool, typer.Option(
        "--live", help="Follow the source's change stream: copy, replay what changed meanwhile, "
        "keep following until stopped (Ctrl-C) or --cutover-after-idle.",
        rich_help_panel=LIVE_PANEL)] = False,
    cutover_after_idle: Annotated[float | None, typer.Option(
        "--cutover-after-idle", min=0, metavar="SECONDS", help="With --live: finish once no "
        "change arrived for SECONDS and all are applied, after a hash verification.",
        rich_help_panel=LIVE_PANEL)] = None,
    delete_check_interval: Annotated[float, typer.Option(
        "--delete-check-interval", min=1, metavar="SECONDS", help="With --live on Cosmos DB "
        "(no delete events): seconds between _id count checks that find deletes.",
        rich_help_panel=LIVE_PANEL)] = 60.0,
    cutover: Annotated[bool, typer.Option(
        "--cutover", help="Ask the running --live migration with these settings to finish: "
        "once caught up it verifies and exits (0 when EQUAL). Stop the application's writes "
        "first.",
        rich_help_panel=LIVE_PANEL)] = False,
    ru_per_second: Annotated[float | None, typer.Option(
        "--ru-per-second", min=1, help="Request units per second each Cosmos DB side may "
        "spend, all readers and writers together (MIG_RU_PER_SECOND); change it while the "
        "run goes with `dataworks throttle RUN_ID`.", rich_help_panel=PANEL)] = None,
    repair: Annotated[bool, typer.Option(
        "--repair", help="After the copy: re-copy the _ids the last verification found "
        "missing or changed, then verify again.", rich_help_panel=PANEL)] = False,
    repair_from: Annotated[Path | None, typer.Option(
        "--repair-from", help="Repair the _ids listed in this `dataworks verify --report` "
        "file (implies --repair).", rich_help_panel=PANEL)] = None,
    delete_extra: Annotated[bool, typer.Option(
        "--delete-extra", help="With --repair: delete target documents the source does not "
        "hold.", rich_help_panel=PANEL)] = False,
    *,
    endpoints: dict[str, str],
    source_dbs: list[str],
    common: CommonOptions,
) -> None:
    """Copy a collection (or whole databases) to the target, resumable: run the same
    command again to resume."""
    settings = common.settings(
        params={"mig_batch_size": "batch_size", "max_insert_workers": "workers",
                "parallel_cursors": "parallel_cursors"},
        mig_batch_size=batch_size,
        max_insert_workers=workers,
        parallel_cursors=parallel_cursors,
        mig_transform_workers=transform_workers,
        mig_ru_per_second=ru_per_second,
        **endpoints,
    )
    selection = database_selection(
        common, settings, endpoints, source_dbs, all_databases=all_databases,
        include=ns_include, exclude=ns_exclude, rename_from=ns_from, rename_to=ns_to,
        strategy_map=strategy_map, parallel_collections=parallel_collections)
    refuse_live_combinations(live=live, cutover=cutover, database=selection is not None,
                             cutover_after_idle=cutover_after_idle,
                             unacknowledged=unacknowledged, preview=preview is not None)
    if selection is not None:
        if preview is not None or json_output or full:
            raise UserError("--preview shows one collection", hint="add --source-collection")
        if repair or repair_from or delete_extra:
            raise UserError("--repair works on one collection at a time",
                            hint="add --source-collection (and the target's)")
        if cutover:
            run_id = asyncio.run(commands.migrate_database(
                settings, selection, strategy=strategy, strategy_map=strategy_map,
                cutover=True, checkpoint_store=checkpoint_store,
                source_kind=source_kind.value, target_kind=target_kind.value))
            output_console().print(f"asked live database run {run_id} to cut over: every "
                                   "collection finishes once it has applied every change and "
                                   "verified its target")
            return
        run_database(settings, selection, common=common, strategy=strategy,
                     strategy_map=strategy_map, parallel_collections=parallel_collections,
                     report_file=report_file, metrics_file=metrics_file, options=dict(
                         checkpoint_store=checkpoint_store, force_from_start=force_from_start,
                         drop_target=drop_target, merge=merge, keep_existing=keep_existing,
                         retry_rejected=retry_rejected,
                         unacknowledged=unacknowledged, handle_signals=True, source_kind=source_kind.value,
                         target_kind=target_kind.value, verify=verify.value,
                         sample_size=sample_size, create_indexes=create_indexes,
                         disable_indexes=disable_indexes, live=live,
                         cutover_after_idle=cutover_after_idle,
                         delete_check_interval=delete_check_interval))
        return
    if cutover:
        run_id = asyncio.run(commands.request_cutover(settings, strategy=strategy,
                                                      checkpoint_store=checkpoint_store))
        output_console().print(f"asked live run {run_id} to cut over: it finishes once it has "
                               "applied every change and verified the target")
        return
    if preview is not None or json_output or full:  # reads N docs, writes nothing
        from dataworks.cli.preview_view import show_preview

        show_preview(settings, preview, strategy, as_json=json_output, full=full)
        return
    metrics = RunMetrics()

    async def run() -> MigrationReport:
        async with monitor_run(metrics, label="migrate", metrics_file=metrics_file) as collector, \
                show_progress(metrics, "migrate", enabled=not common.quiet):
            run_migration = commands.migrate
            if live:
                run_migration = functools.partial(
                    commands.migrate_live, cutover_after_idle=cutover_after_idle,
                    delete_check_interval=delete_check_interval)
            report = await run_migration(
                settings,
                strategy=strategy,
                checkpoint_store=checkpoint_store,
                force_from_start=force_from_start,
                drop_target=drop_target,
                merge=merge,
                keep_existing=keep_existing,
                retry_rejected=retry_rejected,
                unacknowledged=unacknowledged,
                metrics=metrics,
                handle_signals=True,
                source_kind=source_kind.value,
                target_kind=target_kind.value,
                verify=verify.value,
                sample_size=sample_size,
                create_indexes=create_indexes,
                disable_indexes=disable_indexes,
                repair=repair,
                repair_from=repair_from,
                delete_extra=delete_extra,
            )
            collector.attach_report(report.to_dict())
            return report

    try:
        report = asyncio.run(run())
    except Interrupted as exc:
        exc.hint = resume_hint(settings, common)
        raise
    render_report(report, metrics)
    print_request_units(metrics)
    if report_file:
        write_report(report_file, report.to_dict())
    problems = report.problems()
    if problems:
        raise RunFailed("; ".join(problems))
    if report.verified_equal is False:
        mode = report.verification.get("mode", verify.value) if report.verification else ""
        listed = f"the differing _ids are in {report.differences_file}; " \
            if report.differences_file else ""
        raise RunFailed(
            f"verification ({mode}) found differences between source and target",
            hint=f"{listed}add --repair to re-copy them (--delete-extra also deletes extra "
            "documents); the same command without it verifies again",
        )


def refuse_live_combinations(*, live: bool, cutover: bool, database: bool,
                             cutover_after_idle: float | None, unacknowledged: bool,
                             preview: bool) -> None:
    """What live mode cannot do yet is refused before anything is read or written."""
    if not live:
        if cutover_after_idle is not None:
            raise UserError("--cutover-after-idle needs --live")
        return
    if unacknowledged:
        raise UserError("not supported yet: --live with --unacknowledged",
                        hint="live mode checkpoints only what the target acknowledged")
    if preview:
        raise UserError("--preview writes nothing; leave out --live")


_URI_FLAGS = {"--source-uri": "<source connection string>",
              "--target-uri": "<target connection string>"}


def resume_command() -> str:
    """The command line again, without the flags that would start over, and with each
    connection string replaced by a placeholder: a masked URI pasted back cannot log in."""
    argv = [a for a in sys.argv if a not in ("--force-from-start", "--drop-target")]
    shown: list[str] = []
    for i, arg in enumerate(argv):
        flag, eq, _ = arg.partition("=")
        if eq and flag in _URI_FLAGS:
            shown.append(f"{flag}={_URI_FLAGS[flag]}")
        elif i > 0 and argv[i - 1] in _URI_FLAGS:
            shown.append(_URI_FLAGS[argv[i - 1]])
        else:
            shown.append(arg)
    if shown and shown[0].endswith("flexible_migrate.py"):
        shown = ["python", *shown]
    elif shown:
        shown[0] = "dataworks"
    return mask_secrets(shlex.join(shown))


def resume_hint(settings: Settings, common: CommonOptions) -> str:
    """Run the same command again; say where each connection string came from, so the
    user keeps those settings as they are."""
    origins = {row.name: row.origin for row in describe_settings(
        settings, env_file=common.env_file,
        overrides={"mig_source_db_connection_string":
                   "--source-uri" if "--source-uri" in " ".join(sys.argv) else None,
                   "mig_target_db_connection_string":
                   "--target-uri" if "--target-uri" in " ".join(sys.argv) else None})}
    where = []
    for side, name, flag in (("source", "MIG_SOURCE_DB_CONNECTION_STRING", "--source-uri"),
                             ("target", "MIG_TARGET_DB_CONNECTION_STRING", "--target-uri")):
        origin = origins.get(name, "")
        if origin == "command line":
            origin = f"{flag} (pass the same one)"
        elif origin.startswith("environment "):
            origin = f"environment variable {origin.removeprefix('environment ')}"
        where.append(f"the {side} from {origin}")
    return (f"run the same command again to resume: {resume_command()} -- keep the "
            f"connection strings unchanged: {'; '.join(where)}")


def render_report(report: MigrationReport, metrics: RunMetrics | None = None) -> None:
    console = output_console()
    if report.status == "nothing to do":
        if report.problems():  # the copy is done, the target is not right: say it again
            console.print(f"run {report.run_id} already finished ({report.resumed_from:,} "
                          "documents), but not every document is on the target as in the "
                          "source:")
            for problem in report.problems():
                console.print(f"  {problem}")
            return
        console.print(f"nothing to do: run {report.run_id} already finished "
                      f"({report.resumed_from:,} documents). Use --force-from-start to redo it.")
        return
    table = Table(title=f"migration {report.run_id}", show_header=False)
    rows = [
        ("source", report.source), ("target", report.target), ("strategy", report.strategy),
        ("read", f"{report.read:,}"), ("written", f"{report.written:,}"),
        ("already present", f"{report.already_present:,}"),
        ("replaced", f"{report.replaced:,}"),
        *([("kept (different)", f"{report.kept_different:,}")] if report.kept_different
          else []),
        ("transformed", f"{report.transformed:,}"), ("dropped", f"{report.dropped:,}"),
        ("rejected", f"{report.rejected:,}"), ("retries", f"{report.retries:,}"),
        ("throttled", f"{report.throttled:,} (source reads {report.source_throttled:,})"),
        ("resumed from", f"{report.resumed_from:,}"),
        ("duration" if metrics is None and report.live is None else "copy duration",
         f"{report.duration_s:,.1f} s"),
        ("documents/s", f"{report.docs_per_second:,.0f}"),
        ("MB/s", f"{report.mb_per_second:,.1f}"),
        ("peak memory", f"{report.peak_memory_mb:,.0f} MB"),
        ("source count", f"{report.source_count:,}" if report.source_count is not None else "?"),
        ("target count", f"{report.target_count:,}" if report.target_count is not None else "?"),
        ("checkpoints", report.checkpoint_store),
    ]
    if metrics is not None:  # phases after the copy, and the whole command's wall time
        at = rows.index(("documents/s", f"{report.docs_per_second:,.0f}"))
        phases = [(name, f"{seconds:,.1f} s") for name, seconds in metrics.phase_seconds.items()]
        total = time.monotonic() - metrics.started_at
        rows[at:at] = [*phases, ("total duration", f"{total:,.1f} s")]
    if report.dead_letter_file:
        rows.append(("dead letters", f"{report.dead_letters:,} in {report.dead_letter_file}"))
    if report.repair is not None:
        r = report.repair
        rows.append(("repair", f"{r['recopied']:,} re-copied of {r['listed']:,} listed, "
                               f"{r['deleted']:,} extra deleted, {r['kept_extra']:,} kept, "
                               f"{r['not_on_source']:,} not on the source, "
                               f"{r['failed']:,} refused"))
    if report.differences_file:
        rows.append(("differences", report.differences_file))
    if report.retried_rejected:
        rows.append(("retried rejected", f"{report.retried_rejected:,}"))
    if report.kept_ids_file:
        rows.append(("kept _ids", f"{report.kept_total:,} in {report.kept_ids_file}"))
    if report.verification is not None:
        rows.append(("verification", _verification_line(report.verification)))
    if report.live is not None:
        rows += _live_rows(report.live)
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    console.print(report.closing_line())


def _live_rows(live: dict[str, object]) -> list[tuple[str, str]]:
    """--live: what the change stream brought (this run, and since the live run began)."""
    def number(key: str) -> str:
        value = live.get(key)
        return f"{value:,}" if isinstance(value, int) else "?"

    rows = [("change events applied", f"{number('events_applied')} this run, "
             f"{number('events_applied_total')} in all"),
            ("resumed from event", number("resumed_from_event"))]
    if isinstance(live.get("replay_s"), (int, float)):
        rows.append(("replay duration", f"{live['replay_s']:,.1f} s"))
    if live.get("deleted_by_id_check"):
        rows.append(("deleted by _id check", number("deleted_by_id_check")))
    rows.append(("cut over", "yes" if live.get("cut_over") else "no"))
    return rows


def _verification_line(result: dict[str, object]) -> str:
    def number(key: str) -> str:
        value = result.get(key)
        return f"{value:,}" if isinstance(value, int) else "?"

    verdict = "[green]EQUAL[/]" if result["equal"] else "[bold red]DIFFERENT[/]"
    if result["mode"] == "count":
        cost = (f"; {result['request_units']:,.1f} RU"
                if isinstance(result.get("request_units"), float) else "")
        parts = (f", {result['partitions']} partitions"
                 if isinstance(result.get("partitions"), int) and result["partitions"] > 1 else "")
        return (f"count: {verdict} (source {number('source_count')}, target "
                f"{number('target_count')}{parts}{cost})")
    return (f"{result['mode']}: {verdict} ({number('compared')} compared; missing "
            f"{number('missing_count')}, extra {number('extra_count')}, "
            f"changed {number('changed_count')})")


def register(app: typer.Typer) -> None:
    app.command("migrate")(migrate)
