"""Make a source that changes during the copy visible.

A copy reads each partition once: a document inserted below a partition's mark after it
passed, updated after it was copied, or deleted, is not carried over. DataWorks copies a
frozen source exactly; it cannot make a moving one exact. So the run records the source's
count (and, where the server can seek `_id`s, its greatest `_id`) when the copy starts, again
when it ends, and warns when they differ. Updates in place change neither: the README says
the source must be frozen.
"""

from __future__ import annotations

from typing import Any

from dataworks.core.clients import ReadOnlyCollection
from dataworks.core.retry import RetryPolicy, with_retries


async def count_source(source: ReadOnlyCollection, query: dict[str, Any],
                       policy: RetryPolicy, on_retry: Any = None) -> int:
    return await with_retries(
        lambda: source.count_documents(query) if query else source.fast_count(),
        policy, what="counting the source", on_retry=on_retry,
    )


async def newest_id(source: ReadOnlyCollection, query: dict[str, Any],
                    policy: RetryPolicy) -> Any:
    """The greatest `_id` in the server's order (one index seek where `_id` ranges seek)."""
    found = await with_retries(
        lambda: source.find_one(query, projection={"_id": 1}, sort=[("_id", -1)]),
        policy, what="reading the source's newest _id",
    )
    return None if found is None else found["_id"]


async def snapshot(source: ReadOnlyCollection, query: dict[str, Any], policy: RetryPolicy, *,
                   count: int | None = None, seekable: bool) -> dict[str, Any]:
    if count is None:
        count = await count_source(source, query, policy)
    state: dict[str, Any] = {"count": count}
    if seekable:
        state["newest_id"] = await newest_id(source, query, policy)
    return state


def change_warning(start: dict[str, Any], end: dict[str, Any]) -> str | None:
    """The summary's warning when the source moved between the two snapshots."""
    changes = []
    if start.get("count") != end.get("count"):
        changes.append(f"{start.get('count'):,} documents when the copy started, "
                       f"{end.get('count'):,} when it ended")
    if "newest_id" in start and "newest_id" in end and start["newest_id"] != end["newest_id"]:
        changes.append(f"newest _id {start['newest_id']!r} then, {end['newest_id']!r} now")
    if not changes:
        return None
    return ("the source changed during the copy (" + "; ".join(changes) + "): documents "
            "inserted, updated or deleted meanwhile may be missing or stale on the target. "
            "An exact copy needs a frozen source (no writes while it is copied) or live mode")
