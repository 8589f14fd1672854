"""`--retry-rejected`: send the dead letters again, after the user fixed what refused them.

Each dead letter names the source document it came from (`source_id`, else its `_id`); those
are read from the source again (`$in`, batch by batch), go through the strategy as in the
copy, and are written by the same writer, so conflicts are classified as usual. Documents
that land leave the dead-letter file; those refused again stay in it with the new reason.

The file is rewritten only at the end (a new file renamed over it): a retry killed half way
leaves the old list whole, and running it again is safe (what landed is "already present").
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import bson
from bson import json_util

from dataworks.core.clients import RAW_CODEC, ReadOnlyCollection
from dataworks.core.dead_letter import DeadLetterFile, read_records
from dataworks.migrations.reader import apply_transform, encode_transformed
from dataworks.migrations.strategy import BaseMigrationStrategy
from dataworks.migrations.writer import BatchWriter, WriteOutcome
from dataworks.monitoring.metrics import RunMetrics


@dataclass
class RetryOutcome:
    retried: int = 0  # dead letters sent again
    still_rejected: int = 0  # in the dead-letter file afterwards
    not_in_source: int = 0  # their source document is gone: kept in the file


async def retry_rejected(source: ReadOnlyCollection, strategy: BaseMigrationStrategy,
                         dead_letter: DeadLetterFile, make_writer: Any, metrics: RunMetrics, *,
                         query: dict[str, Any], projection: dict[str, Any] | None,
                         batch_size: int) -> RetryOutcome:
    """`make_writer(dead_letter)` gives the BatchWriter that writes and books the documents."""
    records = read_records(dead_letter.path)
    out = RetryOutcome(retried=len(records))
    if not records:
        return out
    fresh = DeadLetterFile(dead_letter.path.with_name(dead_letter.path.name + ".retrying"))
    fresh.path.unlink(missing_ok=True)  # an earlier retry's, killed half way
    writer: BatchWriter = make_writer(fresh)
    by_source: dict[bytes, tuple[Any, list[dict[str, Any]]]] = {}
    for record in records:
        source_id = record.get("source_id", record.get("_id"))
        key = bson.encode({"k": source_id})
        by_source.setdefault(key, (source_id, []))[1].append(record)
    wanted = list(by_source.values())
    for start in range(0, len(wanted), batch_size):
        chunk = wanted[start:start + batch_size]
        found = await _read(source, [source_id for source_id, _ in chunk], query, projection,
                            batch_size)
        for source_id, kept in chunk:
            if bson.encode({"k": source_id}) not in found:
                out.not_in_source += len(kept)
                for record in kept:
                    _keep(fresh, record)
        docs = list(found.values())
        if docs:
            _book(metrics, await _write(writer, strategy, docs, metrics))
    out.still_rejected = fresh.count
    if fresh.count:
        os.replace(fresh.path, dead_letter.path)
    else:
        dead_letter.path.unlink(missing_ok=True)
    return out


async def _read(source: ReadOnlyCollection, ids: list[Any], query: dict[str, Any],
                projection: dict[str, Any] | None, batch_size: int) -> dict[bytes, Any]:
    by_id = {"_id": {"$in": ids}}
    cursor = source.find_raw_batches({"$and": [query, by_id]} if query else by_id, projection,
                                     batch_size=batch_size)
    found: dict[bytes, Any] = {}
    try:
        async for data in cursor:
            for doc in bson.decode_all(data, RAW_CODEC):
                found[bson.encode({"k": doc["_id"]})] = doc
    finally:
        await cursor.close()
    return found


async def _write(writer: BatchWriter, strategy: BaseMigrationStrategy, docs: list[Any],
                 metrics: RunMetrics) -> WriteOutcome:
    metrics.read += len(docs)
    if not strategy.transforms():
        return await writer.write(docs)
    origins: list[Any] = []
    payload = encode_transformed(await apply_transform(
        strategy.transform, [bson.decode(d.raw) for d in docs], metrics, origins))
    return await writer.write(payload, origins)


def _book(metrics: RunMetrics, outcome: WriteOutcome) -> None:
    metrics.written += outcome.written
    metrics.already_present += outcome.already_present
    metrics.replaced += outcome.replaced
    metrics.kept_different += outcome.kept_different
    metrics.rejected += outcome.rejected


def _keep(dead_letter: DeadLetterFile, record: dict[str, Any]) -> None:
    """Carry a record over unchanged (its source document is no longer there to retry)."""
    dead_letter.append(json.loads(json_util.dumps(record)))
