"""`dataworks checkpoints list|show|delete`: inspect and discard saved run state."""

# No `from __future__ import annotations`: typer reads these annotations at runtime.
import asyncio
from typing import Annotated, Any

import typer
from bson import json_util
from rich.table import Table

from dataworks.checkpoints.store import (
    CheckpointStore,
    FileCheckpointStore,
    TargetCheckpointStore,
    parse_store_spec,
)
from dataworks.cli.common import CommonOptions, command_options, output_console
from dataworks.config.settings import Settings
from dataworks.core.clients import connect
from dataworks.core.endpoints import target_endpoint
from dataworks.errors import CheckpointError
from dataworks.migrations.database import DATABASE_RUN

FINISHED = ("completed", "already finished", "skipped", "view created")

checkpoints_app = typer.Typer(help="Inspect or discard saved run state.", no_args_is_help=True)

StoreOption = Annotated[str, typer.Option(
    "--checkpoint-store", help="'target' (dataworks_meta on MIG_TARGET_DB_CONNECTION_STRING) "
    "or file:PATH.")]
TargetUriOption = Annotated[str | None, typer.Option(
    "--target-uri", help="Target connection string (for the target store) "
    "(env: MIG_TARGET_DB_CONNECTION_STRING).")]


async def _with_store(settings: Settings, spec: str, action: Any) -> Any:
    kind, path = parse_store_spec(spec)
    if kind == "file":
        return await action(FileCheckpointStore(path or ""))
    client = connect(target_endpoint(settings))
    try:
        store: CheckpointStore = TargetCheckpointStore(client)
        return await action(store)
    finally:
        await client.close()


def _progress(run: dict[str, Any]) -> str:
    done = run.get("done_count", run.get("acknowledged"))
    total = run.get("source_count", run.get("total"))
    if done is None:
        return ""
    return f"{int(done):,}" + (f" / {int(total):,}" if total is not None else "")


def _add_database_run(table: Table, run: dict[str, Any], by_id: dict[str, Any]) -> None:
    """The database run, then one indented row per collection with its own checkpoint."""
    collections = [c for c in run.get("collections", []) if isinstance(c, dict)]
    done = sum(1 for c in collections if c.get("status") in FINISHED)
    table.add_row(str(run["run_id"]), str(run.get("source", "")), str(run.get("target", "")),
                  "database run", f"{done} / {len(collections)} collections",
                  "yes" if run.get("finished") else "no")
    for c in collections:
        child = by_id.get(str(c.get("run_id")), {})
        live = by_id.get(f"{c.get('run_id')}:live")
        finished = (live.get("finished") if live else child.get("finished")) \
            or c.get("status") in FINISHED
        table.add_row(f"  └ {c.get('run_id') or '-'}", f"  {c.get('source', '')}",
                      f"  {c.get('target', '')}", str(c.get("strategy", "")),
                      _live_progress(live) if live and live.get("phase") != "copy"
                      else _progress(child) or str(c.get("status", "")),
                      "yes" if finished else "no")


def _live_progress(live: dict[str, Any]) -> str:
    """--live, copied: the replay's events and lag (seconds behind the source)."""
    lag = live.get("lag_s")
    return (f"{live.get('phase')}: {int(live.get('events_applied', 0)):,} events, lag "
            + ("?" if lag is None else f"{float(lag):,.1f}") + " s")


@checkpoints_app.command("list")
@command_options
def list_runs(store: StoreOption = "target", target_uri: TargetUriOption = None, *,
              common: CommonOptions) -> None:
    """List the runs that have saved state."""
    settings = common.settings(mig_target_db_connection_string=target_uri)
    runs = [run for run in asyncio.run(_with_store(settings, store, lambda s: s.list_runs()))
            if not str(run["run_id"]).startswith("throttle:")]  # RU budgets, not runs
    table = Table(title=f"checkpoints ({store})")
    table.add_column("run id", no_wrap=True)  # people copy it into `show`/`delete`
    for column in ("source", "target", "strategy"):
        table.add_column(column, overflow="fold")
    for column in ("documents", "finished"):  # short; a folded "14 / 14" reads as two numbers
        table.add_column(column, no_wrap=True)
    by_id = {str(run["run_id"]): run for run in runs}
    grouped = {c.get("run_id") for run in runs if run.get("kind") == DATABASE_RUN
               for c in run.get("collections", []) if isinstance(c, dict)}
    grouped |= {f"{run_id}:live" for run_id in grouped}  # --live: shown in its row
    for run in runs:
        if run["run_id"] in grouped:
            continue  # shown under its database run
        if run.get("kind") == DATABASE_RUN:
            _add_database_run(table, run, by_id)
            continue
        table.add_row(str(run["run_id"]), str(run.get("source", "")), str(run.get("target", "")),
                      str(run.get("strategy", "")), _progress(run),
                      "yes" if run.get("finished") else "no")
    output_console().print(table if runs else "no saved runs")


@checkpoints_app.command("show")
@command_options
def show(run_id: Annotated[str, typer.Argument(help="Run id from `checkpoints list`.")],
         store: StoreOption = "target", target_uri: TargetUriOption = None, *,
         common: CommonOptions) -> None:
    """Print one run's saved state as extended JSON."""
    settings = common.settings(mig_target_db_connection_string=target_uri)
    state = asyncio.run(_with_store(settings, store, lambda s: _load_with_live(s, run_id)))
    if state is None:
        raise CheckpointError(f"no saved state for run {run_id}",
                              hint="see `dataworks checkpoints list`")
    typer.echo(json_util.dumps(state, indent=2, json_options=json_util.RELAXED_JSON_OPTIONS))


async def _load_with_live(store: CheckpointStore, run_id: str) -> dict[str, Any] | None:
    """A run's state; for a --live database run, each collection also shows its live
    checkpoint's phase, events applied and lag (seconds behind the source)."""
    state = await store.load(run_id)
    if state is None or state.get("kind") != DATABASE_RUN:
        return state
    for c in state.get("collections", []):
        if isinstance(c, dict) and c.get("run_id"):
            live = await store.load(f"{c['run_id']}:live")
            if live is not None:
                c["live_checkpoint"] = {k: live.get(k) for k in (
                    "phase", "events_applied", "lag_s", "deleted_by_id_check", "finished",
                    "updated_at")}
    return state


@checkpoints_app.command("delete")
@command_options
def delete(run_id: Annotated[str, typer.Argument(help="Run id from `checkpoints list`.")],
           store: StoreOption = "target", target_uri: TargetUriOption = None, *,
           common: CommonOptions) -> None:
    """Discard a run's saved state: its next run starts from the beginning (for a database
    run: the checkpoints of all its collections too)."""
    settings = common.settings(mig_target_db_connection_string=target_uri)

    async def remove(s: CheckpointStore) -> list[str] | None:
        state = await s.load(run_id)
        if state is None:
            return None
        children = [str(c["run_id"]) for c in state.get("collections", [])
                    if state.get("kind") == DATABASE_RUN and isinstance(c, dict)
                    and c.get("run_id")]
        for child in children:
            await s.delete(child)
        await s.delete(run_id)
        return children

    children = asyncio.run(_with_store(settings, store, remove))
    if children is None:
        raise CheckpointError(f"no saved state for run {run_id}",
                              hint="see `dataworks checkpoints list`")
    typer.echo(f"deleted checkpoint of run {run_id}"
               + (f" and of its {len(children)} collections" if children else ""))


def register(app: typer.Typer) -> None:
    app.add_typer(checkpoints_app, name="checkpoints")
