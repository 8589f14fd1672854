"""How far an index build is, as the server reports it (`currentOp`), for the progress line.

MongoDB reports a build's documents scanned so far (`progress: {done, total}`) in
`currentOp`; then the display shows documents/s and an ETA. Servers that do not (no
`currentOp`, no `progress` in it, no permission to read it) get a plain note instead, never a
guessed rate or ETA.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from pymongo.errors import PyMongoError

from dataworks.monitoring.metrics import in_a_phase, phase_position

POLL_S = 1.0
ASK_S = 5.0  # longest wait for one currentOp answer
NO_PROGRESS = "documents/s unknown: the server reports no index build progress"


def build_progress(inprog: list[Mapping[str, Any]], namespace: str, collection: str,
                   index: str) -> tuple[int, int] | None:
    """(done, total) of the build of `index` on `namespace` among `currentOp`'s operations,
    None when none of them reports it."""
    for op in inprog:
        progress = op.get("progress")
        if not isinstance(progress, Mapping) or "done" not in progress:
            continue
        command = op.get("command") or {}
        names = [i.get("name") for i in command.get("indexes") or [] if isinstance(i, Mapping)]
        on_collection = op.get("ns") == namespace or command.get("createIndexes") == collection
        if on_collection and (not names or index in names):
            return int(progress["done"]), int(progress.get("total") or 0)
    return None


async def report_build_progress(target: Any, index: str) -> tuple[int, int] | None:
    """Ask the server once how far the build of `index` is and show it in the current
    phase; where it does not say, the phase says that documents/s is unknown."""
    try:  # bounded: a display must never hold up (or wait on) the build it watches
        reply = await asyncio.wait_for(
            target.database.client.admin.command({"currentOp": 1, "$all": True}), ASK_S)
        found = build_progress(reply.get("inprog") or [], target.full_name, target.name,
                               index)
    except (PyMongoError, asyncio.TimeoutError):  # no currentOp, not allowed, no answer
        found = None
    if found is None:
        phase_position(0, note=NO_PROGRESS)
    else:
        phase_position(found[0], found[1] or None)
    return found


async def _poll(target: Any, index: str, interval: float) -> None:
    while True:
        await report_build_progress(target, index)
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def watching_build(target: Any, index: str, *,
                         interval: float = POLL_S) -> AsyncIterator[None]:
    """Report the build of `index` on `target` to the current phase while the body runs
    (no polling outside a phase: a library call that shows nothing)."""
    if not in_a_phase():
        yield
        return
    poller = asyncio.create_task(_poll(target, index, interval))
    try:
        yield
    finally:
        poller.cancel()
        await asyncio.wait({poller}, timeout=ASK_S)  # never wait long on a stuck question
