"""A find cursor driven by `find`/`getMore` commands, one page of raw documents per round
trip, that survives a throttled page.

PyMongo closes its cursor (killCursors) on any error a getMore gets. For a cursor that can
be reopened after its last `_id` that costs little; for a collection read in natural order
(natural.py) reopening means reading the whole prefix again to pass over it, and on a
throttled Cosmos DB source that pass-over meets the next throttling answer before it ends,
so the read never finishes. Cosmos DB refuses an over-budget request without running it
("no changes were made"), so the cursor on the server is untouched: asking for the same page
again is right. This cursor keeps its id after a throttling answer (16500 or 50,
`ErrorKind.THROTTLED`); the caller waits and calls `__anext__` again. Any other error ends it
(`resumable` False) and the caller reopens as before. If the server did drop the cursor, the
repeated getMore gets 43 CursorNotFound, which ends it too: nothing is skipped or read twice.

The commands are never retried by the driver (`Database.command` is not a retryable read),
so a getMore is never sent twice without the caller knowing. The cursor's `find` and
`getMore`s share one explicit session where the server has sessions (MongoDB requires it).
"""

from __future__ import annotations

import contextlib
from typing import Any

from bson.int64 import Int64
from bson.raw_bson import RawBSONDocument
from pymongo.errors import ConfigurationError, PyMongoError

from dataworks.core.clients import RAW_CODEC
from dataworks.core.errors import ErrorKind, classify


class PageCursor:
    def __init__(self, collection: Any, query: dict[str, Any],
                 projection: dict[str, Any] | None, batch_size: int) -> None:
        self.__collection = collection  # the driver's collection (read only: find/getMore)
        self._query, self._projection = query, projection
        self.batch_size = batch_size
        self._id: int | None = None  # None: not opened; 0: exhausted
        self.__session: Any = None
        self.resumable = True  # False once an error other than throttling ended it

    @property
    def alive(self) -> bool:
        """Whether the next page asks the server (request-unit metering bills it)."""
        return self._id != 0 and self.resumable

    def __aiter__(self) -> PageCursor:
        return self

    async def __anext__(self) -> list[RawBSONDocument]:
        if not self.resumable:
            raise RuntimeError("the cursor ended with an error; open a new one")
        if self._id == 0:
            raise StopAsyncIteration
        try:
            if self._id is None:
                reply = await self._find()
                page = reply["cursor"]["firstBatch"]
            else:
                reply = await self._command({
                    "getMore": Int64(self._id), "collection": self.__collection.name,
                    "batchSize": self.batch_size})
                page = reply["cursor"]["nextBatch"]
        except PyMongoError as exc:
            if classify(exc).kind is not ErrorKind.THROTTLED:
                self.resumable = False
                await self._end()
            raise
        self._id = int(reply["cursor"]["id"])
        if not page and self._id == 0:
            raise StopAsyncIteration
        return list(page)

    async def _find(self) -> Any:
        command: dict[str, Any] = {"find": self.__collection.name, "filter": self._query,
                                   "batchSize": self.batch_size}
        if self._projection:
            command["projection"] = self._projection
        self.__session = self.__collection.database.client.start_session(
            causal_consistency=False)
        try:
            return await self._command(command)
        except ConfigurationError:  # this server has no sessions: plain commands
            await self.__session.end_session()
            self.__session = None
            return await self._command(command)

    async def _command(self, command: dict[str, Any]) -> Any:
        return await self.__collection.database.command(
            command, codec_options=RAW_CODEC, session=self.__session)

    async def close(self) -> None:
        if self._id:  # opened and not exhausted: the server still holds it
            with contextlib.suppress(PyMongoError):
                await self._command({"killCursors": self.__collection.name,
                                     "cursors": [Int64(self._id)]})
        self._id = 0
        await self._end()

    async def _end(self) -> None:
        if self.__session is not None:
            with contextlib.suppress(PyMongoError):
                await self.__session.end_session()
            self.__session = None
