"""Deletes a Cosmos DB change stream never reports, found by comparing `_id`s.

Cheap check first: when the target holds no more documents than the source, a delete that
was missed would be hidden only by an insert made at the same time, so the full comparison
runs when the counts say so, and always once more before cutover (`always=True`).
The comparison reads the target's `_id`s in order, a batch at a time, and asks the source
which of each batch it still has (`$in` on `_id`: an index lookup on both servers, any `_id`
type); what the source no longer has is deleted from the target.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from dataworks.core.clients import ReadOnlyCollection

# Wraps one read from the source (waits for the RU budget, charges it: live_metering)
SourceRequest = Callable[[], contextlib.AbstractAsyncContextManager[None]]


async def delete_missing(source: ReadOnlyCollection, target: Any, *, batch_size: int = 1000,
                         always: bool = False,
                         request: SourceRequest = contextlib.nullcontext) -> int:
    """Delete target documents whose `_id` the source no longer has; returns how many."""
    if not always:
        async with request():
            source_count = await source.count_documents({})
        target_count = await target.count_documents({})
        if target_count <= source_count:
            return 0
    deleted = 0
    batch: list[Any] = []
    cursor = target.find({}, {"_id": 1}).sort("_id", 1).batch_size(batch_size)
    async for doc in cursor:
        batch.append(doc["_id"])
        if len(batch) >= batch_size:
            deleted += await _delete_gone(source, target, batch, request)
            batch = []
    if batch:
        deleted += await _delete_gone(source, target, batch, request)
    return deleted


async def _delete_gone(source: ReadOnlyCollection, target: Any, ids: list[Any],
                       request: SourceRequest) -> int:
    async with request():  # one round trip: the whole batch fits the first reply
        present = {_key(d["_id"]) async for d in source.find(
            {"_id": {"$in": ids}}, {"_id": 1}).batch_size(len(ids)).limit(len(ids))}
    gone = [i for i in ids if _key(i) not in present]
    if not gone:
        return 0
    result = await target.delete_many({"_id": {"$in": gone}})
    return int(result.deleted_count)


def _key(value: Any) -> Any:
    import bson

    return bson.encode({"v": value})
