"""Sample verification: N random source documents looked up on the target by `_id`.

Random documents come from `$sample` where the source has it (Cosmos DB, MongoDB; retried
with backoff when throttled). Without it (FerretDB) a reservoir sample is drawn over a scan
of `_id`s only (memory: the sample size), then the documents are fetched by `_id`: uniform,
at the price of reading every `_id` once.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import OperationFailure, PyMongoError

from dataworks.core.clients import ReadOnlyCollection
from dataworks.core.retry import RetryPolicy, with_retries
from dataworks.monitoring.metrics import phase_progress, phase_step
from dataworks.verify.hashcompare import Transform, expected_documents
from dataworks.verify.rawdocs import document_id, id_key, split_documents

LOOKUP_CHUNK = 500


@dataclass
class SampleResult:
    sampled: int = 0
    compared: int = 0
    matched: int = 0
    missing: list[Any] = field(default_factory=list)
    changed: list[Any] = field(default_factory=list)
    method: str = ""


async def _sample_with_stage(
    source: ReadOnlyCollection,
    size: int,
    query: Mapping[str, Any] | None,
    projection: Mapping[str, Any] | None,
) -> list[bytes]:
    pipeline: list[dict[str, Any]] = [{"$match": dict(query)}] if query else []
    pipeline.append({"$sample": {"size": size}})
    if projection:
        pipeline.append({"$project": dict(projection)})
    # A batch size on every cursor: some servers answer a getMore without one with all the
    # rest at once, over the maximum message size.
    cursor = await source.raw.aggregate(pipeline, batchSize=1000)
    return [doc.raw async for doc in cursor]


async def _reservoir_ids(
    source: ReadOnlyCollection,
    size: int,
    rng: random.Random,
    query: Mapping[str, Any] | None,
) -> list[Any]:
    reservoir: list[Any] = []
    seen = 0
    scan = source.find_raw_batches(dict(query or {}), projection={"_id": 1}, batch_size=10_000)
    async for batch in scan:
        documents = split_documents(batch)
        phase_progress(len(documents))
        for document in documents:
            seen += 1
            if len(reservoir) < size:
                reservoir.append(document_id(document))
            else:
                slot = rng.randrange(seen)
                if slot < size:
                    reservoir[slot] = document_id(document)
    return reservoir


async def _estimated_count(source: ReadOnlyCollection,
                           query: Mapping[str, Any] | None) -> int | None:
    """The collection's size from its metadata (cheap), for the scan's ETA; None with a
    filter (the scan reads less) or when the server does not say."""
    if query:
        return None
    try:
        return await source.estimated_document_count()
    except PyMongoError:
        return None


async def _fetch(
    collection: Any,
    ids: list[Any],
    policy: RetryPolicy,
    projection: Mapping[str, Any] | None = None,
) -> list[bytes]:
    out: list[bytes] = []
    options = {"projection": dict(projection)} if projection else {}

    async def lookup(chunk: list[Any]) -> list[bytes]:
        found: list[bytes] = []
        async for batch in collection.find_raw_batches({"_id": {"$in": chunk}},
                                                       batch_size=LOOKUP_CHUNK, **options):
            found.extend(split_documents(batch))
        return found

    for start in range(0, len(ids), LOOKUP_CHUNK):
        chunk = ids[start : start + LOOKUP_CHUNK]
        out.extend(
            await with_retries(lambda c=chunk: lookup(c), policy, what="sample lookup")
        )
        phase_progress(len(chunk))
    return out


async def sample_compare(
    source: ReadOnlyCollection,
    target: AsyncCollection[Any],
    size: int,
    *,
    transform: Transform | None = None,
    seed: int | None = None,
    policy: RetryPolicy | None = None,
    source_query: Mapping[str, Any] | None = None,
    source_projection: Mapping[str, Any] | None = None,
) -> SampleResult:
    policy = policy or RetryPolicy()
    result = SampleResult()
    phase_step(f"drawing {size:,} random documents from the source")
    try:  # a throttled or timed-out $sample (16500, 50) is retried, never scanned around
        documents = await with_retries(
            lambda: _sample_with_stage(source, size, source_query, source_projection),
            policy, what="sampling the source ($sample)")
        result.method = "$sample"
    except OperationFailure as exc:  # not retryable: the server has no $sample
        phase_step("no $sample on the source: reading every _id for the sample",
                   total=await _estimated_count(source, source_query), unit="_ids")
        ids = await _reservoir_ids(source, size, random.Random(seed), source_query)
        phase_step("reading the sampled source documents", total=len(ids))
        documents = await _fetch(source, ids, policy, source_projection)
        result.method = f"reservoir over an _id scan (no $sample on the source: code {exc.code})"
    unique: dict[Any, bytes] = {}
    for document in documents:  # $sample may return a document twice
        unique.setdefault(id_key(document_id(document)), document)
    result.sampled = len(unique)

    expected: dict[Any, tuple[Any, bytes]] = {}
    for document in unique.values():
        for out in await expected_documents(document, transform):
            value = document_id(out)
            expected[id_key(value)] = (value, out)
    phase_step("comparing with the target", total=len(expected))
    found = {
        id_key(document_id(d)): d
        for d in await _fetch(target, [value for value, _ in expected.values()], policy)
    }
    for key, (value, wanted) in expected.items():
        result.compared += 1
        actual = found.get(key)
        if actual is None:
            result.missing.append(value)
        elif actual != wanted:
            result.changed.append(value)
        else:
            result.matched += 1
    return result
