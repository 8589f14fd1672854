"""Database connections. The source side is read-only by construction.

`ReadOnlyCollection` wraps a PyMongo `AsyncCollection` and exposes only reads: there is no
attribute through which a strategy, the engine or a bug could insert, update, delete or
drop on the source. Aggregations that write (`$out`, `$merge`) are refused too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import AsyncMongoClient, uri_parser
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import (
    ConfigurationError,
    ConnectionFailure,
    InvalidURI,
    OperationFailure,
    PyMongoError,
)

from dataworks.config.uri import UriError, mask_secrets, mask_uri, parse_connection_string
from dataworks.errors import SettingsError

RAW_CODEC: CodecOptions[RawBSONDocument] = CodecOptions(document_class=RawBSONDocument)
APP_NAME = "dataworks"


@dataclass(frozen=True)
class SettingNames:
    """What an error about each part of an endpoint tells the user to check: the flag they
    passed (`--source-uri`), else the setting the value came from."""

    uri: str = "the connection string"
    db: str = "the database name"
    collection: str = "the collection name"


@dataclass(frozen=True)
class Endpoint:
    """Where one side lives; `uri` may hold a password, so never print it unmasked."""

    uri: str
    db: str
    collection: str
    max_pool_size: int = 10
    min_pool_size: int = 0
    max_idle_time_ms: int | None = None
    server_selection_timeout_ms: int = 10_000
    names: SettingNames = field(default_factory=SettingNames, compare=False)

    @property
    def namespace(self) -> str:
        return f"{self.db}.{self.collection}"

    def display(self) -> str:
        """Hosts and namespace: what reports, logs and checkpoints show (no credentials)."""
        return f"{self.host_key()} {self.namespace}"

    def host_key(self) -> str:
        """The hosts as the driver reads them (lower case, default port, sorted), without
        credentials or options: part of a run's identity."""
        try:
            return parse_connection_string(self.uri).host_key()
        except UriError as exc:
            raise SettingsError(f"connection string {mask_uri(self.uri)} is not valid: {exc}",
                                hint="escape / : @ ? and % in user names and passwords "
                                "(urllib.parse.quote_plus)") from None


def connect(endpoint: Endpoint, **extra: Any) -> AsyncMongoClient[Any]:
    """An `AsyncMongoClient` with the endpoint's pool settings; bad URIs become SettingsError."""
    options: dict[str, Any] = {
        "maxPoolSize": endpoint.max_pool_size,
        "minPoolSize": endpoint.min_pool_size,
        "serverSelectionTimeoutMS": endpoint.server_selection_timeout_ms,
        "appname": APP_NAME,
    }
    if endpoint.max_idle_time_ms:
        options["maxIdleTimeMS"] = endpoint.max_idle_time_ms
    _let_uri_options_win(options, endpoint.uri)
    options.update(extra)
    try:
        return AsyncMongoClient(endpoint.uri, **options)
    except (InvalidURI, ConfigurationError, ValueError) as exc:
        message = mask_secrets(str(exc).replace(endpoint.uri, mask_uri(endpoint.uri)))
        raise SettingsError(
            f"connection string {mask_uri(endpoint.uri)} is not valid: {message}"
        ) from None


def _let_uri_options_win(options: dict[str, Any], uri: str) -> None:
    """Keyword options override the URI's in PyMongo, so drop our defaults for what the user
    wrote in the connection string: Cosmos DB needs the portal's `appName=@account@`, and a
    `maxIdleTimeMS` in the string is the user's choice (COSMOS.md section 7)."""
    try:
        written = {name.lower() for name in parse_connection_string(uri).options}
    except UriError:
        return  # AsyncMongoClient reports the bad string itself
    for name in list(options):
        if name.lower() in written:
            del options[name]


async def check_reachable(client: AsyncMongoClient[Any], endpoint: Endpoint, *,
                          side: str) -> None:
    """First contact with a server: a wrong address or password is the user's to fix, so say
    so at once (after one server-selection timeout) instead of retrying it for minutes."""
    from dataworks.core.errors import classify, fatal_error, server_words

    setting = endpoint.names.uri
    try:
        await client.admin.command("ping")
        if not _has_credentials(endpoint.uri):
            await _refuse_missing_login(client, side=side, setting=setting)
    except OperationFailure as exc:
        raise fatal_error(classify(exc), side=side, setting=setting) from None
    except ConnectionFailure as exc:
        seconds = endpoint.server_selection_timeout_ms / 1000
        raise SettingsError(
            f"cannot reach the {side} at {endpoint.host_key()} within {seconds:g}s: "
            f"{server_words(exc)}",
            hint=f"check the host, port and TLS options in {setting} and that the server is "
            "running; FRAMEWORK_SERVER_SELECTION_TIMEOUT_MS sets how long to wait",
        ) from None


async def _refuse_missing_login(client: AsyncMongoClient[Any], *, side: str,
                                setting: str) -> None:
    """ping needs no login; listDatabases does, on a server that requires one. Only "requires
    authentication" counts: a user who may not list databases is not our business here."""
    from dataworks.core.errors import classify, fatal_error

    try:
        await client.admin.command("listDatabases", nameOnly=True)
    except OperationFailure as exc:
        if "requires authentication" in str(exc):
            raise fatal_error(classify(exc), side=side, setting=setting) from None


def _has_credentials(uri: str) -> bool:
    """A user name, or an authMechanism that logs in without one (X.509, AWS, OIDC)."""
    try:
        parsed = uri_parser.parse_uri(uri, validate=False)
    except Exception:  # noqa: BLE001 - connect() has accepted it; assume a login is in it
        return True
    options = {str(k).lower() for k in (parsed.get("options") or {})}
    return bool(parsed.get("username")) or "authmechanism" in options


_WRITING_STAGES = ("$out", "$merge")


class ReadOnlyCollection:
    """The source collection, with read operations only."""

    def __init__(self, collection: AsyncCollection[Any]) -> None:
        self.__collection = collection
        self.name = collection.name
        self.database_name = collection.database.name
        self.full_name = collection.full_name

    @property
    def raw(self) -> ReadOnlyCollection:
        """The same collection returning `RawBSONDocument`s."""
        return ReadOnlyCollection(self.__collection.with_options(codec_options=RAW_CODEC))

    def find(self, *args: Any, **kwargs: Any) -> Any:
        return ReadOnlyCursor(self.__collection.find(*args, **kwargs))

    def find_raw_batches(self, *args: Any, **kwargs: Any) -> Any:
        return ReadOnlyCursor(self.__collection.find_raw_batches(*args, **kwargs))

    def find_raw_documents(self, *args: Any, **kwargs: Any) -> RawDocumentBatches:
        """`find` as an async iterator of server batches, each a list of `RawBSONDocument`."""
        raw = self.__collection.with_options(codec_options=RAW_CODEC)
        return RawDocumentBatches(ReadOnlyCursor(raw.find(*args, **kwargs)))

    def find_raw_pages(self, query: Mapping[str, Any], projection: Any = None, *,
                       batch_size: int) -> Any:
        """`find` as pages of raw documents that a throttled page does not end
        (`core.page_cursor.PageCursor`): natural-order reads cannot reopen cheaply."""
        from dataworks.core.page_cursor import PageCursor  # it imports this module

        return PageCursor(self.__collection, dict(query), projection, batch_size)

    async def find_one(self, *args: Any, **kwargs: Any) -> Any:
        return await self.__collection.find_one(*args, **kwargs)

    async def count_documents(self, query: Mapping[str, Any], **kwargs: Any) -> int:
        return await self.__collection.count_documents(query, **kwargs)

    async def estimated_document_count(self) -> int:
        return await self.__collection.estimated_document_count()

    async def aggregate(self, pipeline: Sequence[Mapping[str, Any]], **kwargs: Any) -> Any:
        for stage in pipeline:
            if any(key in stage for key in _WRITING_STAGES):
                raise PermissionError("the source is read-only: $out and $merge are refused")
        return ReadOnlyCursor(await self.__collection.aggregate(list(pipeline), **kwargs))

    async def change_stream(self, pipeline: Sequence[Mapping[str, Any]] | None = None,
                            **kwargs: Any) -> ReadOnlyChangeStream:
        """A change stream on the collection (a read: live migration follows it), wrapped
        like cursors: the driver's stream keeps a path back to the writable collection."""
        return ReadOnlyChangeStream(
            await self.__collection.watch(list(pipeline or []), **kwargs))

    async def explain_find(self, query: Mapping[str, Any], **kwargs: Any) -> dict[str, Any]:
        command: dict[str, Any] = {"find": self.name, "filter": dict(query)}
        if "sort" in kwargs:
            command["sort"] = dict(kwargs["sort"])
        return await self.__collection.database.command("explain", command)

    async def list_indexes(self) -> list[dict[str, Any]]:
        cursor = await self.__collection.list_indexes()
        return [dict(index) async for index in cursor]

    async def exists(self) -> bool:
        names = await self.__collection.database.list_collection_names(
            filter={"name": self.name}
        )
        return self.name in names

    async def fast_count(self) -> int:
        return await fast_count(self.__collection)

    async def collection_stats(self) -> dict[str, Any]:
        return await self.__collection.database.command("collStats", self.name)


class ReadOnlyCursor:
    """A source cursor without the attributes that lead back to writable driver objects
    (`collection`, `session` and so on); everything else is the driver's cursor."""

    _HIDDEN = frozenset({"collection", "session"})

    def __init__(self, cursor: Any) -> None:
        self.__cursor = cursor

    def __getattr__(self, name: str) -> Any:
        if name in self._HIDDEN or name.startswith("_"):
            raise AttributeError(f"the source is read-only: cursors have no {name!r}")
        value = getattr(self.__cursor, name)
        if not callable(value):
            return value
        inner = self.__cursor

        def call(*args: Any, **kwargs: Any) -> Any:
            result = value(*args, **kwargs)
            if result is inner:  # chained: cursor.sort(...).limit(...)
                return self
            if type(result) is type(inner):  # clone()
                return ReadOnlyCursor(result)
            return result

        return call

    def __aiter__(self) -> ReadOnlyCursor:
        return self

    async def __anext__(self) -> Any:
        return await self.__cursor.__anext__()

    async def __aenter__(self) -> ReadOnlyCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.__cursor.close()


class ReadOnlyChangeStream(ReadOnlyCursor):
    """A source change stream: the cursor's read-only wrapping, plus the operation time it
    started at (where a server gives no resume token until the first event)."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.__stream = stream

    @property
    def start_at_operation_time(self) -> Any:
        return getattr(self.__stream, "_start_at_operation_time", None)

    @property
    def buffered(self) -> int | None:
        """Events of the last page not handed out yet (0: the next `try_next` asks the
        server); None where the driver does not show it."""
        data = getattr(getattr(self.__stream, "_cursor", None), "_data", None)
        return None if data is None else len(data)


class RawDocumentBatches:
    """One list of `RawBSONDocument`s per find/getMore reply (one round trip per batch).

    What the migration reader wants from `find_raw_batches`, without wrapping twice: PyMongo
    cuts a raw reply into `RawBSONDocument`s, joins them back into one bytes object, and the
    reader had to cut that again. A plain `find` with the raw codec cuts the reply once, and
    the batch is taken off the cursor's buffer without a coroutine per document. Client CPU
    of reading ~1.7 KB documents: about 9 -> 7 µs each (`python -m bench.client_limit
    read-cost`, docs/BENCHMARKS.md "Pass-through").
    """

    def __init__(self, cursor: Any) -> None:
        self.__cursor = cursor
        self.__taken = 0

    def __aiter__(self) -> RawDocumentBatches:
        return self

    @property
    def alive(self) -> bool:
        """Whether the next batch may ask the server (request-unit metering bills it)."""
        return bool(self.__cursor.alive)

    async def __anext__(self) -> list[RawBSONDocument]:
        cursor = self.__cursor
        first = await cursor.next()  # the only call that may go to the server
        buffered = cursor.retrieved - self.__taken - 1  # the rest of the same reply
        docs = [first, *(await cursor.to_list(buffered))] if buffered > 0 else [first]
        self.__taken += len(docs)
        return docs

    async def close(self) -> None:
        await self.__cursor.close()


async def fast_count(collection: Any) -> int:
    """Document count from collection metadata (`collStats`), where `count` would scan.

    MongoDB answers `count` from metadata, but FerretDB scans and decodes every document,
    and Cosmos DB charges RUs for it; `collStats` is cheap on all three.
    """
    try:
        stats = await collection.database.command("collStats", collection.name)
        return int(stats["count"])
    except (PyMongoError, KeyError, TypeError, ValueError):
        return int(await collection.estimated_document_count())
