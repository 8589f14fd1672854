"""Read one partition as raw BSON batches and queue them: in `_id` order, or in natural order
where the server cannot seek (see `natural.py`).

Pass-through strategies get `RawBSONDocument`s cut from the server's reply bytes (never
decoded into dicts). Transforming strategies get dicts, and their output is queued instead;
with a transform pool the raw batch goes to worker processes (transform_pool.py).
A cursor that dies (network, Cosmos DB cursor timeout) is reopened after the last `_id`
(or natural-order position) already queued, so nothing is read twice or skipped.
"""

from __future__ import annotations

import asyncio
import inspect
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bson
import bson.errors
from bson import ObjectId
from bson.raw_bson import RawBSONDocument
from pymongo.errors import PyMongoError

from dataworks.core.clients import ReadOnlyCollection
from dataworks.core.endpoints import SOURCE_SETTING
from dataworks.core.errors import ErrorKind, classify, fatal_error
from dataworks.core.retry import RetryBudget, RetryPolicy, with_retries
from dataworks.core.throttle import ReadPacer
from dataworks.errors import DataWorksError, PluginError
from dataworks.migrations.batches import Batch
from dataworks.migrations.natural import IdSequence, check_same_prefix
from dataworks.migrations.partitioning import NATURAL
from dataworks.migrations.watermarks import PartitionState
from dataworks.monitoring.metrics import RunMetrics

if TYPE_CHECKING:
    from dataworks.migrations.transform_pool import TransformPool

Transform = Callable[[dict[str, Any]], Any]


async def apply_transform(transform: Transform, docs: list[dict[str, Any]],
                          metrics: RunMetrics, origins: list[Any] | None = None) -> list[Any]:
    """Run a strategy's transform over decoded documents: None drops, a list splits.

    `origins`, when given, gets the source `_id` of each output document (dead letters keep
    it, so a rejected document can be read from the source again)."""
    out: list[Any] = []
    for doc in docs:
        source_id = doc.get("_id")  # before the transform can change it
        try:
            result = transform(doc)
            if inspect.isawaitable(result):
                result = await result
        except (DataWorksError, asyncio.CancelledError):
            raise
        except Exception as exc:
            raise _transform_failed(exc, doc) from exc
        if result is None:
            metrics.dropped += 1
            continue
        produced = list(result) if isinstance(result, list | tuple) else [result]
        out.extend(produced)
        metrics.transformed += 1
        if origins is not None:
            origins.extend([source_id] * len(produced))
    return out


def encode_transformed(docs: list[Any]) -> list[Any]:
    """Queue transformed documents as BSON, not dicts.

    A decoded ~1.7 KB document holds several times its size in Python objects, and the
    queue holds up to 2 x workers batches: with dicts, peak memory of the volvo strategy
    was 347 MB at 100,000 documents (bench/, 1,000-document batches, 8 workers).
    `insert_many` would encode them anyway and sends `RawBSONDocument`s as they are, so
    this moves the encoding, it does not add any. As `insert_many` does, a document without
    `_id` gets a new ObjectId here, on the client.
    """
    out: list[Any] = []
    for doc in docs:
        if isinstance(doc, RawBSONDocument):
            out.append(doc)
            continue
        try:
            if "_id" not in doc:
                doc["_id"] = ObjectId()
            out.append(RawBSONDocument(bson.encode(doc)))
        except (TypeError, ValueError, bson.errors.InvalidDocument) as exc:
            raise PluginError(
                f"the strategy's transform returned a document that cannot be stored: "
                f"{type(exc).__name__}: {exc}",
                hint="return a dict (or a list of dicts, or None) with BSON-encodable values",
            ) from exc
    return out


def user_frame(exc: BaseException) -> str:
    """`file:line: ` of the first frame outside DataWorks: the line of the user's hook that
    raised (or called what raised); "" when there is none."""
    package = str(Path(__file__).resolve().parents[1])
    for frame in traceback.extract_tb(exc.__traceback__):
        if not str(Path(frame.filename).resolve()).startswith(package):
            return f"{Path(frame.filename).name}:{frame.lineno}: "
    return ""


def _transform_failed(exc: Exception, doc: Any) -> PluginError:
    where = user_frame(exc)
    try:
        doc_id = repr(doc["_id"])
    except (KeyError, TypeError):
        doc_id = "?"
    return PluginError(
        f"{where}the strategy's transform raised {type(exc).__name__}: {exc} "
        f"(source document _id {doc_id})",
        hint="fix the strategy (--debug shows the traceback); checkpoints were saved, so run "
        "the same command again to resume",
    )


class PartitionReader:
    def __init__(
        self,
        source: ReadOnlyCollection,
        *,
        base_query: dict[str, Any],
        projection: dict[str, Any] | None,
        batch_size: int,
        queue: asyncio.Queue[Batch | None],
        stop: asyncio.Event,
        metrics: RunMetrics,
        policy: RetryPolicy,
        transform: Transform | None,
        pool: TransformPool | None = None,
        pacer: ReadPacer | None = None,
        setting: str = SOURCE_SETTING,
    ) -> None:
        self.setting = setting  # what a fatal error tells the user to check
        self.pacer = pacer or ReadPacer(1_000_000, batch_size, metrics=metrics)
        self.source = source
        self.base_query = base_query
        self.projection = projection
        self.batch_size = batch_size
        self.queue = queue
        self.stop = stop
        self.metrics = metrics
        self.policy = policy
        self.transform = transform
        self.pool = pool  # when set, batches are transformed in worker processes

    async def read(self, state: PartitionState) -> None:
        """Queue every batch of the partition after its high-water mark."""
        natural = state.partition.group == NATURAL
        # What is queued so far: a reopened cursor (and a resumed run) starts after it.
        position = {"after": state.high_water, "seq": 0}

        async def read_from_position() -> None:
            if natural:
                await self._read_natural(state, position)
            else:
                await self._read_until_done(state, position)

        def count_retry(*_: Any) -> None:
            self.metrics.retries += 1  # throttling answers were counted by the pacer

        try:
            await with_retries(
                read_from_position, self.policy,
                what=f"reading partition {state.partition.index}",
                on_retry=count_retry, progress=lambda: position["seq"],
            )
        except PyMongoError as exc:
            raise fatal_error(classify(exc), side="source",
                              setting=self.setting) from exc
        if not self.stop.is_set():
            state.reading_finished(position["seq"])

    async def _round_trip(self, cursor: Any) -> list[RawBSONDocument] | None:
        """One find / getMore under a pacer permit (one batch of raw documents); None when
        the cursor is exhausted.
        A throttling answer (16500 / 429 / 50) slows every reader down, then propagates to
        the retry loop, which waits (RetryAfterMs at least) and reopens after the mark."""
        async with self.pacer.permit() as permit:
            try:
                docs: list[RawBSONDocument] = await cursor.__anext__()
            except StopAsyncIteration:
                return None
            except PyMongoError as exc:
                if classify(exc).kind is ErrorKind.THROTTLED:
                    self.pacer.throttled(permit)
                raise
        self.pacer.succeeded()
        return docs

    async def _read_until_done(self, state: PartitionState, position: dict[str, Any]) -> None:
        """Read in `_id` order; a cursor is reopened after the last queued `_id` when it is
        lost (CursorNotFound, network) or when the pacer changed the batch size."""
        while True:
            query = state.partition.query(self.base_query, after=position["after"])
            batch_size = self.pacer.batch_size
            cursor = self.source.find_raw_documents(
                query, self.projection, sort=[("_id", 1)], batch_size=batch_size
            )
            try:
                while (docs := await self._round_trip(cursor)) is not None:
                    if not docs:
                        continue
                    last_id = docs[-1]["_id"]
                    await self._queue(state, position, docs, _size(docs), mark=last_id)
                    position["after"] = last_id
                    if self.stop.is_set():
                        return
                    if self.pacer.batch_size != batch_size:
                        break  # reopen with the new batch size, after the mark
                else:
                    return
            finally:
                await cursor.close()

    async def _read_natural(self, state: PartitionState, position: dict[str, Any]) -> None:
        """One unsorted cursor from the start; the documents up to the mark are passed over
        (and proven to be the same ones) instead of sent again."""
        resume_at: dict[str, Any] | None = position["after"]
        to_pass = int(resume_at["read"]) if resume_at else 0
        seen = IdSequence()
        # A cursor that a throttled page leaves open: reopening would read the prefix again
        cursor = self.source.find_raw_pages(
            self.base_query, self.projection, batch_size=self.pacer.batch_size
        )
        stuck = self.policy.budget(f"reading partition {state.partition.index}")
        try:
            while (docs := await self._next_page(cursor, stuck)) is not None:
                if seen.read < to_pass:
                    passed = docs[:to_pass - seen.read]
                    seen.add(passed)
                    docs = docs[len(passed):]
                    if seen.read == to_pass:
                        check_same_prefix(seen, resume_at or {})
                if not docs:
                    continue
                seen.add(docs)
                mark = seen.mark()
                await self._queue(state, position, docs, _size(docs), mark=mark)
                position["after"] = mark
                if self.stop.is_set():
                    return
        finally:
            await cursor.close()
        if seen.read < to_pass:
            check_same_prefix(seen, resume_at or {})

    async def _next_page(self, cursor: Any, stuck: RetryBudget) -> list[RawBSONDocument] | None:
        """The next page of a natural-order cursor. A throttled page is asked for again on
        the same cursor after the wait (RetryAfterMs at least), within the retry limits;
        any other error, or a cursor the throttling ended, goes to the reopening loop."""
        while True:
            try:
                docs = await self._round_trip(cursor)
            except PyMongoError as exc:
                verdict = classify(exc)
                if verdict.kind is not ErrorKind.THROTTLED or not cursor.resumable:
                    raise
                pause = stuck.next_delay(verdict)  # RunFailed when throttled for too long
                self.metrics.retries += 1
                await asyncio.sleep(pause)
                continue
            stuck.progressed()
            return docs

    async def _queue(self, state: PartitionState, position: dict[str, Any],
                     docs: list[RawBSONDocument], nbytes: int, *, mark: Any) -> None:
        self.metrics.read += len(docs)
        payload: list[Any] = docs
        pending = None
        origins: list[Any] | None = None
        if self.pool is not None:
            pending, payload = await self.pool.submit(docs), []
        elif self.transform is not None:
            origins = []
            payload = encode_transformed(await apply_transform(
                self.transform, [bson.decode(d.raw) for d in docs], self.metrics, origins
            ))
        await self.queue.put(Batch(
            partition=state.partition.index,
            seq=position["seq"],
            mark=mark,
            source_count=len(docs),
            documents=payload,
            nbytes=nbytes,
            pending=pending,
            origins=origins,
        ))
        position["seq"] += 1


def _size(docs: list[RawBSONDocument]) -> int:
    """BSON bytes of a batch (for MB/s)."""
    return sum(len(d.raw) for d in docs)
