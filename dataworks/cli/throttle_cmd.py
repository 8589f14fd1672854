"""`dataworks throttle RUN_ID --ru-per-second N`: change a running migration's RU budget.

The budget is written beside the run's checkpoint (same store, record `throttle:RUN_ID`);
the running migration reads it every few seconds (`monitoring.ru_budget.BudgetControl`).
"""

# No `from __future__ import annotations`: typer reads these annotations at runtime.
import asyncio
import time
from typing import Annotated

import typer

from dataworks.checkpoints.store import CheckpointStore
from dataworks.cli.checkpoints_cmd import StoreOption, TargetUriOption, _with_store
from dataworks.cli.common import CommonOptions, command_options
from dataworks.errors import CheckpointError
from dataworks.monitoring.ru_budget import POLL_S, control_key


@command_options
def throttle(
    run_id: Annotated[str, typer.Argument(help="Run id (see `dataworks checkpoints list`).")],
    ru_per_second: Annotated[float, typer.Option(
        "--ru-per-second", min=1, help="New RU/s budget for each Cosmos DB side of the run.")],
    store: StoreOption = "target",
    target_uri: TargetUriOption = None,
    *,
    common: CommonOptions,
) -> None:
    """Change the request-unit budget of a running (or resumable) migration."""
    settings = common.settings(mig_target_db_connection_string=target_uri)

    async def write(s: CheckpointStore) -> bool:
        if await s.load(run_id) is None:
            return False
        await s.save(control_key(run_id), {"run_id": run_id, "ru_per_second": ru_per_second,
                                           "updated_at": time.time()})
        return True

    if not asyncio.run(_with_store(settings, store, write)):
        raise CheckpointError(f"no saved state for run {run_id}",
                              hint="see `dataworks checkpoints list` (and pass the same "
                              "--checkpoint-store as the run)")
    typer.echo(f"run {run_id}: RU budget set to {ru_per_second:,.0f} RU/s; a running "
               f"migration applies it within {POLL_S * 2:.0f} s")


def register(app: typer.Typer) -> None:
    app.command("throttle")(throttle)
