"""Hash verification: both sides read in `_id` order per partition, compared byte for byte.

Per partition, one cursor on each side streams raw batches (prefetched, so both servers work
while Python compares). Identical runs of documents are compared as whole list slices (one C
call); only where bytes differ is an `_id` decoded, to tell a changed document from a
missing or an extra one. Missing and extra documents keep a 16-byte digest; `reconcile`
pairs those with the same `_id` found in different places (a transform that moves `_id`s
across partitions, or an `_id` order the server sorts differently from `sort_key`), so the
result never depends on the two agreeing on order.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import bson
from bson.raw_bson import RawBSONDocument
from pymongo.asynchronous.collection import AsyncCollection

from dataworks.core.clients import ReadOnlyCollection
from dataworks.core.errors import classify
from dataworks.core.retry import RetryPolicy
from dataworks.migrations.partitioning import after_in_bson_order
from dataworks.monitoring.metrics import phase_progress
from dataworks.verify.partitions import VerifyPartition
from dataworks.verify.rawdocs import (
    document_id,
    id_key,
    resume_id,
    sort_key,
    split_documents,
)

TransformResult = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None
Transform = Callable[[dict[str, Any]], TransformResult | Awaitable[TransformResult]]
PREFETCH_BATCHES = 4


def digest(document: bytes) -> bytes:
    return hashlib.blake2b(document, digest_size=16).digest()


async def expected_documents(raw: bytes, transform: Transform | None) -> list[bytes]:
    """What the target should hold for one source document: itself, or the transform's
    output encoded as the engine would insert it (`bson.encode` puts `_id` first, as
    PyMongo's insert does)."""
    if transform is None:
        return [raw]
    result = transform(bson.decode(raw))
    if inspect.isawaitable(result):
        result = await result
    if result is None:
        return []
    if isinstance(result, Mapping):
        result = [result]
    return [d.raw if isinstance(d, RawBSONDocument) else bson.encode(d) for d in result]


# Differences listed by `_id` (298 bytes each for ObjectIds, measured with tracemalloc, so
# about 60 MB at the limit); beyond it they are only counted. A hash verify of a half-copied
# 60M-document target would otherwise hold 30M of them (about 9 GB).
MAX_LISTED_IDS = 200_000
_DIGEST_MOD = 1 << 128


@dataclass
class ListingBudget:
    """How many more differences may be listed by `_id`, shared by all partitions."""

    left: int = MAX_LISTED_IDS

    def take(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return True


@dataclass
class Differences:
    """Accumulated over partitions; keys are `id_key(_id)`. Once the listing budget is spent,
    further differences are only counted (`unlisted`), and cannot be paired by `reconcile`."""

    source_docs: int = 0
    target_docs: int = 0
    compared: int = 0
    matched: int = 0
    missing: dict[Any, tuple[Any, bytes]] = field(default_factory=dict)
    extra: dict[Any, tuple[Any, bytes]] = field(default_factory=dict)
    changed: dict[Any, Any] = field(default_factory=dict)
    unlisted: dict[str, int] = field(default_factory=dict)  # kind -> count beyond the budget
    budget: ListingBudget = field(default_factory=ListingBudget, repr=False)
    # Every missing and every extra document, listed or not, as a count and a sum of digests:
    # equal counts and sums mean each missing document was found elsewhere (a transform moved
    # its `_id` to another partition), even past the listing budget where `reconcile` cannot
    # pair them by `_id`. So the verdict stays exact whatever the budget.
    missing_total: int = 0
    extra_total: int = 0
    missing_sum: int = 0
    extra_sum: int = 0

    def add_missing(self, document: bytes) -> None:
        hashed = digest(document)
        self.missing_total += 1
        self.missing_sum = (self.missing_sum + int.from_bytes(hashed)) % _DIGEST_MOD
        if self._listed("missing"):
            value = document_id(document)
            self.missing[id_key(value)] = (value, hashed)

    def add_extra(self, document: bytes) -> None:
        hashed = digest(document)
        self.extra_total += 1
        self.extra_sum = (self.extra_sum + int.from_bytes(hashed)) % _DIGEST_MOD
        if self._listed("extra"):
            value = document_id(document)
            self.extra[id_key(value)] = (value, hashed)

    def add_changed(self, value: Any) -> None:
        if self._listed("changed"):
            self.changed[id_key(value)] = value

    def _listed(self, kind: str) -> bool:
        if self.budget.take():
            return True
        self.unlisted[kind] = self.unlisted.get(kind, 0) + 1
        return False

    def absorb(self, other: Differences) -> None:
        self.source_docs += other.source_docs
        self.target_docs += other.target_docs
        self.compared += other.compared
        self.matched += other.matched
        self.missing.update(other.missing)
        self.extra.update(other.extra)
        self.changed.update(other.changed)
        for kind, count in other.unlisted.items():
            self.unlisted[kind] = self.unlisted.get(kind, 0) + count
        self.missing_total += other.missing_total
        self.extra_total += other.extra_total
        self.missing_sum = (self.missing_sum + other.missing_sum) % _DIGEST_MOD
        self.extra_sum = (self.extra_sum + other.extra_sum) % _DIGEST_MOD

    def missing_equals_extra(self) -> bool:
        """Whether the documents missing in their partition are exactly those found extra in
        another (same count, same sum of 128-bit digests), listed or not."""
        return (self.missing_total == self.extra_total
                and self.missing_sum == self.extra_sum)

    def reconcile(self) -> None:
        """Pair a missing and an extra document with the same `_id`: same bytes is a match,
        other bytes a change."""
        for key in self.missing.keys() & self.extra.keys():
            value, source_digest = self.missing.pop(key)
            _, target_digest = self.extra.pop(key)
            if source_digest == target_digest:
                self.matched += 1
            else:
                self.changed[key] = value


Convert = Callable[[list[bytes]], Awaitable[list[bytes]]]


class _Prefetch:
    """Reads one side's partition ahead into a small queue, so the server keeps sending while
    the comparison runs. A throttled or dropped cursor (Cosmos DB 16500, a reset connection,
    CursorNotFound) is reopened after the last `_id` already delivered, within the retry
    policy; other errors surface on the consumer's next `next()`."""

    def __init__(
        self, open_cursor: Callable[[Any], Any], convert: Convert, policy: RetryPolicy,
        *, counts_progress: bool = False,
    ) -> None:
        self._counts_progress = counts_progress  # the source side: documents compared
        self._open = open_cursor
        self._cursor: Any = None
        self._queue: asyncio.Queue[list[bytes] | BaseException | None] = asyncio.Queue(
            PREFETCH_BATCHES
        )
        self._task = asyncio.create_task(self._run(convert, policy))

    async def _run(self, convert: Convert, policy: RetryPolicy) -> None:
        last: Any = _NOTHING
        attempt = 0
        while True:
            self._cursor = self._open(None if last is _NOTHING else last)
            try:
                async for batch in self._cursor:
                    documents = split_documents(batch)
                    if documents:
                        last = resume_id(documents[-1])
                        if self._counts_progress:
                            phase_progress(len(documents))
                    await self._queue.put(await convert(documents))
                    attempt = 0
            except Exception as exc:  # noqa: BLE001 - classified, then retried or handed on
                verdict = classify(exc)
                attempt += 1
                if verdict.retryable and attempt < policy.max_attempts:
                    with contextlib.suppress(Exception):
                        await self._cursor.close()
                    await asyncio.sleep(policy.delay(attempt, verdict.retry_after_s))
                    continue
                await self._queue.put(exc)
                return
            await self._queue.put(None)
            return

    async def next(self) -> list[bytes] | None:
        item = await self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        with contextlib.suppress(Exception):
            if self._cursor is not None:
                await self._cursor.close()


_NOTHING = object()


def resume_query(base: Mapping[str, Any], after: Any) -> dict[str, Any]:
    """The partition's filter, narrowed to `_id`s after `after` in the server's order (a
    plain `$gt` is type-bracketed: it would skip later types in a mixed partition)."""
    if after is None:
        return dict(base)
    later = after_in_bson_order(after)
    return {"$and": [dict(base), later]} if base else later


async def compare_partition(
    source: ReadOnlyCollection,
    target: AsyncCollection[Any],
    partition: VerifyPartition,
    *,
    transform: Transform | None = None,
    batch_size: int = 1000,
    policy: RetryPolicy | None = None,
    source_query: Mapping[str, Any] | None = None,
    source_projection: Mapping[str, Any] | None = None,
    budget: ListingBudget | None = None,
) -> Differences:
    """Merge one partition of both sides in `_id` order. `source_query` and
    `source_projection` narrow the source side only: what a strategy's `build_query()` and
    `projection()` made the migration read."""
    found = Differences(budget=budget or ListingBudget())
    query = dict(partition.filter)
    sort = [("_id", 1)]

    async def source_docs(documents: list[bytes]) -> list[bytes]:
        found.source_docs += len(documents)
        if transform is None:
            return documents
        out: list[bytes] = []
        for document in documents:
            out.extend(await expected_documents(document, transform))
        return out

    async def target_docs(documents: list[bytes]) -> list[bytes]:
        found.target_docs += len(documents)
        return documents

    policy = policy or RetryPolicy()

    def reader(collection: Any, extra: Mapping[str, Any] | None = None,
               projection: Mapping[str, Any] | None = None) -> Callable[[Any], Any]:
        def open_cursor(after: Any) -> Any:
            own = resume_query(query, after)
            if extra:
                own = {"$and": [own, dict(extra)]} if own else dict(extra)
            options: dict[str, Any] = {"sort": sort, "batch_size": batch_size}
            if projection:
                options["projection"] = dict(projection)
            return collection.find_raw_batches(own, **options)

        return open_cursor

    left = _Prefetch(reader(source, source_query, source_projection), source_docs, policy,
                     counts_progress=True)
    right = _Prefetch(reader(target), target_docs, policy)
    try:
        await _merge(left, right, found)
    finally:
        await left.close()
        await right.close()
    return found


async def _merge(left: _Prefetch, right: _Prefetch, found: Differences) -> None:
    src: list[bytes] | None = await left.next()
    tgt: list[bytes] | None = await right.next()
    i = j = 0
    while src is not None and tgt is not None:
        if i >= len(src):
            src, i = await left.next(), 0
            continue
        if j >= len(tgt):
            tgt, j = await right.next(), 0
            continue
        run = min(len(src) - i, len(tgt) - j)
        if src[i : i + run] == tgt[j : j + run]:  # the common case: identical documents
            found.compared += run
            found.matched += run
            i += run
            j += run
            continue
        while i < len(src) and j < len(tgt):
            a, b = src[i], tgt[j]
            if a == b:
                found.compared += 1
                found.matched += 1
                i += 1
                j += 1
                continue
            id_a, id_b = document_id(a), document_id(b)
            if id_key(id_a) == id_key(id_b):
                found.compared += 1
                found.add_changed(id_a)
                i += 1
                j += 1
            elif sort_key(id_a) < sort_key(id_b):
                found.add_missing(a)
                i += 1
            else:
                found.add_extra(b)
                j += 1
    while src is not None:
        for document in src[i:]:
            found.add_missing(document)
        src, i = await left.next(), 0
    while tgt is not None:
        for document in tgt[j:]:
            found.add_extra(document)
        tgt, j = await right.next(), 0


async def hash_compare(
    source: ReadOnlyCollection,
    target: AsyncCollection[Any],
    partitions: list[VerifyPartition],
    *,
    transform: Transform | None = None,
    parallelism: int = 4,
    batch_size: int = 1000,
    policy: RetryPolicy | None = None,
    source_query: Mapping[str, Any] | None = None,
    source_projection: Mapping[str, Any] | None = None,
    max_listed: int = MAX_LISTED_IDS,
) -> Differences:
    """All partitions, at most `parallelism` at a time, combined and reconciled; at most
    `max_listed` differences are kept by `_id` (the rest are counted)."""
    gate = asyncio.Semaphore(max(1, parallelism))
    budget = ListingBudget(max_listed)

    async def one(partition: VerifyPartition) -> Differences:
        async with gate:
            return await compare_partition(
                source, target, partition, transform=transform, batch_size=batch_size,
                policy=policy, source_query=source_query, source_projection=source_projection,
                budget=budget,
            )

    total = Differences(budget=budget)
    for part in await asyncio.gather(*(one(p) for p in partitions)):
        total.absorb(part)
    total.reconcile()
    return total
