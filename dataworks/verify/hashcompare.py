"""Hash verification: both sides read in `_id` order per partition, compared byte for byte.

Per partition, one cursor on each side streams raw batches (prefetched, so both servers work
while Python compares). Identical runs of documents are compared as whole list slices (one C
call); only where bytes differ is an `_id` decoded, to tell a changed document from a
missing or an extra one. Missing and extra documents keep a 16-byte digest; `reconcile`
pairs those with the same `_id` found in different places (a transform that moves `_id`s
across partitions, or an `_id` order the server sorts differently from `sort_key`), so the
result never depends on the two agreeing on order.

A partition marked `natural` (a server that cannot seek `_id` ranges, where an `_id` order is
a sort of the whole collection before the first batch) is read unsorted on both sides. Two
copies of a collection usually come back in the same order, so the same slice comparison
does the work; documents met out of step wait in a bounded buffer, by their bytes, until the
other side shows the same bytes (identical bytes are the same `_id`, which is unique per
side). Whatever is left at the end is paired by `_id` (changed) or is missing or extra. When
the buffer fills up (the two orders really differ), or a cursor fails, the partition is
compared again from the start in `_id` order: exactness never depends on the order.
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
# Natural-order comparison: bytes of documents met out of step that may wait for their
# match (each counted with UNMATCHED_OVERHEAD for its dict entry and object header). Past it,
# the partition is compared again in `_id` order.
UNMATCHED_LIMIT_BYTES = 32 * 1024 * 1024
UNMATCHED_OVERHEAD = 100
# Documents in step, one by one, before going back to comparing whole slices.
RESYNC_RUN = 32


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
    notes: list[str] = field(default_factory=list)

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

    def listed(self) -> int:
        return len(self.missing) + len(self.extra) + len(self.changed)

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
        self.notes.extend(other.notes)

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
        *, counts_progress: bool = False, resumable: bool = True,
    ) -> None:
        self._counts_progress = counts_progress  # the source side: documents compared
        self._resumable = resumable  # `_id` order: reopened after the last `_id` delivered
        self.delivered = 0  # documents read (before `convert`)
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
                        if self._resumable:
                            last = resume_id(documents[-1])
                        self.delivered += len(documents)
                        if self._counts_progress:
                            phase_progress(len(documents))
                    await self._queue.put(await convert(documents))
                    attempt = 0
            except Exception as exc:  # noqa: BLE001 - classified, then retried or handed on
                verdict = classify(exc)
                attempt += 1
                if self._resumable and verdict.retryable and attempt < policy.max_attempts:
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
    unmatched_limit: int = UNMATCHED_LIMIT_BYTES,
) -> Differences:
    """Compare one partition of both sides: merged in `_id` order, or (`partition.natural`)
    matched in natural order, falling back to `_id` order. `source_query` and
    `source_projection` narrow the source side only: what a strategy's `build_query()` and
    `projection()` made the migration read."""
    budget = budget or ListingBudget()
    options = {"transform": transform, "batch_size": batch_size,
               "policy": policy or RetryPolicy(), "source_query": source_query,
               "source_projection": source_projection}
    if partition.natural:
        found = Differences(budget=budget)
        left: _Prefetch | None = None
        why = ""
        try:
            left, right = _open_sides(source, target, partition, found, natural=True,
                                      **options)
            try:
                await _merge_unordered(left, right, found, unmatched_limit)
                return found
            finally:
                await left.close()
                await right.close()
        except _OutOfStep as exc:
            why = str(exc)
        except Exception as exc:
            if not classify(exc).retryable:
                raise
            why = f"a cursor failed ({type(exc).__name__}) and cannot resume in natural order"
        # Start again in `_id` order: give back what this attempt listed and counted.
        budget.left += found.listed()
        if left is not None and left.delivered:
            phase_progress(-left.delivered)
        retried = await _compare_in_id_order(source, target, partition, budget, **options)
        retried.notes.append(f"{partition.label}: {why}; compared again in _id order")
        return retried
    return await _compare_in_id_order(source, target, partition, budget, **options)


async def _compare_in_id_order(
    source: Any, target: Any, partition: VerifyPartition, budget: ListingBudget,
    **options: Any,
) -> Differences:
    found = Differences(budget=budget)
    left, right = _open_sides(source, target, partition, found, natural=False, **options)
    try:
        await _merge(left, right, found)
    finally:
        await left.close()
        await right.close()
    return found


def _open_sides(
    source: Any, target: Any, partition: VerifyPartition, found: Differences, *,
    natural: bool, transform: Transform | None, batch_size: int, policy: RetryPolicy,
    source_query: Mapping[str, Any] | None, source_projection: Mapping[str, Any] | None,
) -> tuple[_Prefetch, _Prefetch]:
    """One prefetching reader per side, sorted by `_id` unless `natural`."""
    query = dict(partition.filter)

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

    def reader(collection: Any, extra: Mapping[str, Any] | None = None,
               projection: Mapping[str, Any] | None = None) -> Callable[[Any], Any]:
        def open_cursor(after: Any) -> Any:
            own = resume_query(query, after)
            if extra:
                own = {"$and": [own, dict(extra)]} if own else dict(extra)
            options: dict[str, Any] = {"batch_size": batch_size}
            if not natural:
                options["sort"] = [("_id", 1)]
            if projection:
                options["projection"] = dict(projection)
            return collection.find_raw_batches(own, **options)

        return open_cursor

    left = _Prefetch(reader(source, source_query, source_projection), source_docs, policy,
                     counts_progress=True, resumable=not natural)
    right = _Prefetch(reader(target), target_docs, policy, resumable=not natural)
    return left, right


def _identical_run(src: list[bytes], i: int, tgt: list[bytes], j: int,
                   found: Differences) -> int:
    """The common case, one list comparison for the rest of both batches: how many
    documents from `src[i]` and `tgt[j]` on are identical (all or nothing), counted."""
    run = min(len(src) - i, len(tgt) - j)
    if src[i : i + run] != tgt[j : j + run]:
        return 0
    found.compared += run
    found.matched += run
    return run


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
        if run := _identical_run(src, i, tgt, j, found):
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


class _OutOfStep(Exception):
    """The two sides' natural orders differ by more than the unmatched buffer holds."""


class _Unmatched:
    """Documents of both sides met out of step, by their bytes (with a count: the same bytes
    twice on one side stay two documents), and the bytes they hold."""

    def __init__(self) -> None:
        self.source: dict[bytes, int] = {}
        self.target: dict[bytes, int] = {}
        self.size = 0

    def add(self, side: dict[bytes, int], document: bytes) -> None:
        side[document] = side.get(document, 0) + 1
        self.size += len(document) + UNMATCHED_OVERHEAD

    def take(self, side: dict[bytes, int], document: bytes) -> bool:
        """Remove one `document` from `side`; False when it is not there."""
        count = side.get(document)
        if count is None:
            return False
        if count == 1:
            del side[document]
        else:
            side[document] = count - 1
        self.size -= len(document) + UNMATCHED_OVERHEAD
        return True

    def pair_by_id(self, found: Differences) -> None:
        """Documents on both sides with the same `_id` (and so different bytes): changed."""
        by_id: dict[Any, list[bytes]] = {}
        for document, count in self.target.items():
            by_id.setdefault(id_key(document_id(document)), []).extend([document] * count)
        for document, count in list(self.source.items()):
            for _ in range(count):
                value = document_id(document)
                twins = by_id.get(id_key(value))
                if not twins:
                    break
                self.take(self.target, twins.pop())
                self.take(self.source, document)
                found.compared += 1
                found.add_changed(value)


async def _merge_unordered(left: _Prefetch, right: _Prefetch, found: Differences,
                           limit: int) -> None:
    """Match both sides read in natural order (see the module's doc); raises `_OutOfStep`
    when more than `limit` bytes of documents wait for their match."""
    waiting = _Unmatched()
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
        if run := _identical_run(src, i, tgt, j, found):
            i += run
            j += run
            continue
        in_step = 0
        while i < len(src) and j < len(tgt) and in_step < RESYNC_RUN:
            a, b = src[i], tgt[j]
            if a == b:
                in_step += 1
                i += 1
                j += 1
            elif waiting.take(waiting.target, a):  # the target showed it earlier
                in_step = 0
                i += 1
            elif waiting.take(waiting.source, b):  # the source showed it earlier
                in_step = 0
                j += 1
            else:
                in_step = 0
                waiting.add(waiting.source, a)
                waiting.add(waiting.target, b)
                i += 1
                j += 1
                if waiting.size > limit:
                    waiting.pair_by_id(found)  # changed documents also wait: pair them
                    if waiting.size > limit // 2:
                        raise _OutOfStep(
                            f"the two sides' natural orders differ by more than "
                            f"{limit // 2**20} MiB of documents")
                continue
            found.compared += 1
            found.matched += 1
    # One side has ended: what the other still sends either waited on the ended side, or
    # has the `_id` of a document that waits there (changed), or is missing / extra.
    waiting.pair_by_id(found)
    if src is not None:
        await _drain(src, i, left, waiting, waiting.target, found, found.add_missing)
    if tgt is not None:
        await _drain(tgt, j, right, waiting, waiting.source, found, found.add_extra)
    for document, count in waiting.source.items():
        for _ in range(count):
            found.add_missing(document)
    for document, count in waiting.target.items():
        for _ in range(count):
            found.add_extra(document)


async def _drain(batch: list[bytes] | None, start: int, reader: _Prefetch,
                 waiting: _Unmatched, ended: dict[bytes, int], found: Differences,
                 alone: Callable[[bytes], None]) -> None:
    """The rest of the side still sending, from `batch[start]` on, once the other side has
    ended (`ended`: what still waits from it, with no `_id` in common with the waiting of
    this side)."""
    by_id = {id_key(document_id(d)): d for d in ended}
    while batch is not None:
        for document in batch[start:]:
            if ended and waiting.take(ended, document):
                found.compared += 1
                found.matched += 1
                continue
            if by_id:
                value = document_id(document)
                twin = by_id.pop(id_key(value), None)
                if twin is not None and waiting.take(ended, twin):
                    found.compared += 1
                    found.add_changed(value)
                    continue
            alone(document)
        batch, start = await reader.next(), 0


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
