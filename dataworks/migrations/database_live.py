"""`migrate --live` for a database run: every collection is a `LiveMigration` of its own
(its own change stream, starting point, checkpoint `<collection run>:live` and strategy),
under the database run's one Ctrl-C and one cutover gate.

    start_streams   every selected collection's stream opened and its starting point saved,
                    before the first document of any collection is read
    (copy)          the database run copies as without --live (`LiveMigration.copy`)
    follow          each collection, once copied, replays and follows its own stream (outside
                    the --parallel-collections slots: following is cheap and must not wait)
                    until the gate opens for all, then verifies itself (hash)

One stream per collection, not one per database: Cosmos DB's change streams take the
restricted pipeline per collection and send no deletes, so the `_id` comparison that finds
deletes runs per collection anyway, and a collection renamed by --ns-from/--ns-to needs no
routing: its stream only ever writes to its own target.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from dataworks.checkpoints.store import CheckpointStore, open_store
from dataworks.core.clients import ReadOnlyCollection, connect, fast_count
from dataworks.errors import Interrupted, UserError
from dataworks.migrations.live import LiveMigration, LiveOptions, cutover_id, live_id
from dataworks.migrations.live_cutover import CutoverGate
from dataworks.monitoring.metrics import current_run

if TYPE_CHECKING:
    from dataworks.migrations.database import CollectionJob, DatabaseRun

log = logging.getLogger("dataworks.migrate.live")


def source_of(job: CollectionJob, client: Any) -> ReadOnlyCollection:
    assert job.options is not None
    return ReadOnlyCollection(client[job.options.source.db][job.options.source.collection])


def target_of(job: CollectionJob, client: Any) -> Any:
    assert job.options is not None
    return client[job.options.target.db][job.options.target.collection]


async def start_streams(run: DatabaseRun, live: LiveOptions, jobs: list[CollectionJob],
                        source_client: Any, store: CheckpointStore,
                        run_id: str) -> CutoverGate:
    """Give every job its `LiveMigration`; refuse what live mode cannot do for any of them
    before starting any stream; then open every stream and save its starting point."""
    gate = CutoverGate(store, cutover_id(run_id), live.cutover_after_idle,
                       [j.pair.source for j in jobs])
    for job in jobs:
        assert job.options is not None
        job.live = LiveMigration(job.options, live, job.metrics, stop=run.stop, gate=gate)
        job.live.member = job.pair.source
        job.live.check(source_of(job, source_client))  # UserError: exit 2, nothing started
    for job in jobs:
        assert job.live is not None
        finished = await job.live.prepare(source_of(job, source_client), store)
        if finished is not None:  # cut over by an earlier run
            job.live = None
            job.finished_live = finished
            gate.leave(job.pair.source)
    return gate


async def follow(run: DatabaseRun, job: CollectionJob, source_client: Any,
                 target_client: Any, store: CheckpointStore, gate: CutoverGate) -> None:
    """Replay and follow one copied collection until the run cuts over; its row gets the
    verification at cutover and the live figures."""
    assert job.live is not None and job.copy_report is not None
    outcome, target = job.outcome, target_of(job, target_client)
    try:
        with current_run(job.metrics):  # its verification shows on its line
            report = await job.live.follow(source_of(job, source_client), target, store,
                                           job.copy_report)
        outcome.live = report.live
        verdict = report.verification or {}
        outcome.verification = {k: verdict.get(k) for k in (
            "mode", "equal", "source_count", "target_count", "compared", "missing_count",
            "extra_count", "changed_count") if k in verdict}
        outcome.source_count = verdict.get("source_count", outcome.source_count)
        outcome.target_count = await fast_count(target)
        outcome.status = "completed"
    except Interrupted:
        outcome.status = "interrupted"
        outcome.live = job.copy_report.live
    except Exception as exc:  # noqa: BLE001 - one collection's failure is its row's
        outcome.status = "failed"
        outcome.error = str(exc)
        log.error("%s failed while following changes: %s", job.pair.source, exc)
    finally:
        gate.leave(job.pair.source)


async def request_cutover(run: DatabaseRun) -> str:
    """`migrate --cutover` in the database form: plan as the live run did (read-only) to find
    its identity, and leave the request its gate polls. Returns the database run id."""
    base = run.options.base
    source_client, target_client = connect(base.source), connect(base.target)
    try:
        run.jobs = await run._plan(source_client)
        run_id = run._run_id()
        store = open_store(base.checkpoint_store, target_client)
        state = await store.load(run_id)
        following = [j for j in run.jobs if j.outcome.run_id
                     and await store.load(live_id(j.outcome.run_id)) is not None]
        if state is None or state.get("finished") or not following:
            raise UserError(
                f"no live migration to cut over: database run {run_id} "
                + ("has already cut over" if state and state.get("finished")
                   else "has no live checkpoint"),
                hint="give --cutover the same databases, patterns, strategy map, target and "
                "--checkpoint-store as the live run")
        await store.save(cutover_id(run_id), {"run_id": run_id, "requested_at": time.time()})
        return run_id
    finally:
        await source_client.close()
        await target_client.close()
