"""Cosmos DB request units: read each operation's charge with `getLastRequestStatistics`.

Cosmos DB for MongoDB (RU) answers `{"getLastRequestStatistics": 1}` with the name, charge
and duration of the last operation, e.g.

    {"_t": "GetRequestStatisticsResponse", "ok": 1, "CommandName": "find",
     "RequestCharge": 10.1, "RequestDurationInMilliSeconds": 7.2}

(older servers: `"OP_QUERY"`/`"insert"` and int64 durations). The docs say "last operation"
without saying per connection or per account, so the command must run on the connection that
did the work. PyMongo gives no way to pick a pooled connection, so metered sides get their
own small pool of single-connection clients (`maxPoolSize=1`): a slot is taken, the
operation runs, the statistics command runs on the same (only) connection, the slot is
released. Writers keep their parallelism (one slot per insert worker); each source cursor
owns one slot for its lifetime and asks after every batch it fetched.

Planning queries (counts, `$sample`) and checkpoint writes are not metered. With an RU
budget (`--ru-per-second`, `monitoring.ru_budget`) every metered request first waits for
the side's token bucket and is charged what it cost.
A server without the command (MongoDB, FerretDB, Cosmos DB vCore) is noticed on the first
try, logged once, and not asked again.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pymongo.errors import OperationFailure, PyMongoError

from dataworks.config.uri import UriError, parse_connection_string
from dataworks.core.clients import Endpoint, ReadOnlyCollection, connect
from dataworks.monitoring.metrics import RunMetrics
from dataworks.monitoring.ru_budget import RequestUnitBucket

log = logging.getLogger("dataworks.ru")

Kind = Literal["cosmos", "mongodb", "auto"]
COSMOS_HOST_SUFFIXES = (".cosmos.azure.com", ".documents.azure.com")
COMMAND_NOT_FOUND = 59
STATS_COMMAND = "getLastRequestStatistics"


class RequestStatisticsError(ValueError):
    """A reply that is not a usable request-statistics response."""


@dataclass(frozen=True)
class RequestStatistics:
    command: str
    charge: float
    duration_ms: float | None


def parse_request_statistics(reply: Mapping[str, Any]) -> RequestStatistics:
    """The charge in one `getLastRequestStatistics` reply (double or int64 numbers)."""
    if float(reply.get("ok", 0)) != 1.0:
        raise RequestStatisticsError(
            f"error reply (code {reply.get('code')}): {reply.get('errmsg', '')}"
        )
    if "RequestCharge" not in reply:
        raise RequestStatisticsError("reply has no RequestCharge")
    try:
        charge = float(reply["RequestCharge"])
        duration = reply.get("RequestDurationInMilliSeconds")
        duration_ms = None if duration is None else float(duration)
    except (TypeError, ValueError) as exc:
        raise RequestStatisticsError(f"unreadable number in {dict(reply)!r}") from exc
    if charge < 0 or charge != charge:  # negative or NaN: never add it to a total
        raise RequestStatisticsError(f"invalid RequestCharge {reply['RequestCharge']!r}")
    return RequestStatistics(str(reply.get("CommandName", "unknown")), charge, duration_ms)


def hosts_of(uri: str) -> list[str]:
    """Host names of a connection string, read by the driver's parser (an `@` in
    `appName=@acct@` is an option, not the end of a password)."""
    try:
        return [host for host, _ in parse_connection_string(uri).hosts]
    except UriError:
        return []


def is_cosmos_uri(uri: str) -> bool:
    """Cosmos DB by host name, the test PyMongo itself uses (`_detect_external_db`)."""
    return any(h.endswith(COSMOS_HOST_SUFFIXES) for h in hosts_of(uri))


def resolve_kind(kind: str, uri: str) -> Literal["cosmos", "mongodb"]:
    """The kind from the flag, else from the host name alone (see `detect_kind` for the
    server's own markers)."""
    if kind == "auto":
        return "cosmos" if is_cosmos_uri(uri) else "mongodb"
    if kind in ("cosmos", "mongodb"):
        return kind  # type: ignore[return-value]
    raise ValueError(f"unknown server kind {kind!r} (cosmos, mongodb or auto)")


async def cosmos_marker(client: Any) -> str | None:
    """Which of Cosmos DB's own markers the server shows (COSMOS.md §2, §7), or None.

    Cosmos DB (RU) tags its replies with `_t`: `hello`/`isMaster` answers
    `"_t": "IsMasterResponse"`, and `getLastRequestStatistics` (a command no MongoDB or
    FerretDB has) answers `"_t": "GetRequestStatisticsResponse"` with a `RequestCharge`.
    Only these documented markers count: `setName: "globaldb"` alone is any replica set's
    name, and a `hello.msg` naming Cosmos is unconfirmed."""
    try:
        hello = await client.admin.command("hello")
    except PyMongoError as exc:
        log.debug("hello failed while detecting the server kind: %s", exc)
        return None
    if hello.get("_t") == "IsMasterResponse":
        return 'hello answers _t: "IsMasterResponse"'
    try:
        stats = await client.admin.command(STATS_COMMAND)
    except PyMongoError:
        return None  # MongoDB and FerretDB: no such command
    if stats.get("_t") == "GetRequestStatisticsResponse" or "RequestCharge" in stats:
        return f"{STATS_COMMAND} answers with a request charge"
    return None


async def detect_kind(kind: str, endpoint: Endpoint, client: Any,
                      side: str = "source") -> Literal["cosmos", "mongodb"]:
    """`--source-kind`/`--target-kind` when given; with `auto`, Cosmos DB by host name
    (`*.cosmos.azure.com`) or else by the server's own replies (`cosmos_marker`), so a
    Cosmos DB behind another name (a private endpoint, a tunnel, the test stand-in) is
    metered too."""
    if kind != "auto" or is_cosmos_uri(endpoint.uri):
        return resolve_kind(kind, endpoint.uri)
    marker = await cosmos_marker(client)
    if marker is None:
        return "mongodb"
    log.info("%s is Cosmos DB (%s)", side, marker)
    return "cosmos"


class RequestUnitMeter:
    """Adds charges to `metrics.request_units` and `metrics.request_units_by["side:cmd"]`."""

    def __init__(self, metrics: RunMetrics, side: str,
                 bucket: RequestUnitBucket | None = None) -> None:
        self.metrics = metrics
        self.side = side
        self.bucket = bucket  # the side's RU budget, charged with every charge read
        self.supported = True
        self.samples = 0
        self.failures = 0  # replies or commands that gave no charge

    def record(self, reply: Mapping[str, Any]) -> RequestStatistics | None:
        try:
            stats = parse_request_statistics(reply)
        except RequestStatisticsError as exc:
            self.failures += 1
            log.debug("%s: unusable request statistics: %s", self.side, exc)
            return None
        self.samples += 1
        if self.bucket is not None:
            self.bucket.charge(stats.charge)
        self.metrics.request_units += stats.charge
        key = f"{self.side}:{stats.command}"
        self.metrics.request_units_by[key] = self.metrics.request_units_by.get(key, 0.0) \
            + stats.charge
        return stats

    async def admit(self) -> None:
        """Wait until the side's RU budget allows another request (no budget: at once)."""
        if self.bucket is not None:
            await self.bucket.admit()

    async def sample(self, database: Any) -> RequestStatistics | None:
        """Ask `database`'s (single) connection for the charge of what it just did."""
        if not self.supported:
            return None
        try:
            reply = await database.command(STATS_COMMAND)
        except OperationFailure as exc:
            if exc.code == COMMAND_NOT_FOUND or "no such" in str(exc).lower():
                # concurrent slots, and the verification's own meter, may all learn it: say
                # it once per side and run
                if self.side not in self.metrics.request_units_unsupported:
                    self.metrics.request_units_unsupported.add(self.side)
                    log.warning("%s: the server does not report request charges "
                                "(%s unsupported); RU are not counted", self.side,
                                STATS_COMMAND)
                self.supported = False
            else:
                self.failures += 1
            return None
        except PyMongoError as exc:  # never fail a run over accounting
            self.failures += 1
            log.debug("%s: %s failed: %s", self.side, STATS_COMMAND, exc)
            return None
        return self.record(reply)


class _Slots:
    """Single-connection clients, handed out one task at a time."""

    def __init__(self, clients: list[Any]) -> None:
        self.clients = clients
        self._free: asyncio.Queue[Any] | None = None

    @classmethod
    def connect(cls, endpoint: Endpoint, count: int) -> _Slots:
        return cls([connect(endpoint, maxPoolSize=1, minPoolSize=0)
                    for _ in range(max(1, count))])

    async def acquire(self) -> Any:
        if self._free is None:
            self._free = asyncio.Queue()
            for client in self.clients:
                self._free.put_nowait(client)
        return await self._free.get()

    def release(self, client: Any) -> None:
        assert self._free is not None
        self._free.put_nowait(client)

    async def close(self) -> None:
        for client in self.clients:
            await client.close()


class MeteredTarget:
    """A target collection whose `insert_many` is charged; everything else passes through."""

    def __init__(self, collection: Any, slots: _Slots, meter: RequestUnitMeter) -> None:
        self._collection = collection
        self._slots = slots
        self._meter = meter

    def __getattr__(self, name: str) -> Any:
        return getattr(self._collection, name)

    async def insert_many(self, documents: Any, **kwargs: Any) -> Any:
        client = await self._slots.acquire()
        try:
            database = client[self._collection.database.name]
            collection = database.get_collection(
                self._collection.name, codec_options=self._collection.codec_options,
                write_concern=self._collection.write_concern,
            )
            await self._meter.admit()
            try:
                result = await collection.insert_many(documents, **kwargs)
            except PyMongoError:
                await self._meter.sample(database)  # failed and throttled writes cost RU too
                raise
            await self._meter.sample(database)
            return result
        finally:
            self._slots.release(client)


class MeteredSource:
    """The read-only source; `find_raw_batches` cursors are charged batch by batch."""

    def __init__(self, source: ReadOnlyCollection, slots: _Slots,
                 meter: RequestUnitMeter) -> None:
        self._source = source
        self._slots = slots
        self._meter = meter

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)

    def find_raw_batches(self, *args: Any, **kwargs: Any) -> _MeteredCursor:
        return _MeteredCursor(self._source, self._slots, self._meter, args, kwargs)

    def find_raw_documents(self, *args: Any, **kwargs: Any) -> _MeteredCursor:
        return _MeteredCursor(self._source, self._slots, self._meter, args, kwargs,
                              method="find_raw_documents")

    def find_raw_pages(self, *args: Any, **kwargs: Any) -> _MeteredCursor:
        return _MeteredCursor(self._source, self._slots, self._meter, args, kwargs,
                              method="find_raw_pages")


class _MeteredCursor:
    def __init__(self, source: ReadOnlyCollection, slots: _Slots, meter: RequestUnitMeter,
                 args: tuple[Any, ...], kwargs: dict[str, Any],
                 method: str = "find_raw_batches") -> None:
        self._source, self._slots, self._meter = source, slots, meter
        self._method = method  # each batch it yields is one find/getMore round trip
        self._args, self._kwargs = args, kwargs
        self._client: Any = None
        self._cursor: Any = None

    def __aiter__(self) -> _MeteredCursor:
        return self

    @property
    def resumable(self) -> bool:
        """A page cursor that a throttled page did not end (`core.page_cursor`): the
        same cursor, on the same connection, is asked again."""
        return self._cursor is None or bool(getattr(self._cursor, "resumable", False))

    async def __anext__(self) -> Any:
        if self._client is None:
            self._client = await self._slots.acquire()
            own = ReadOnlyCollection(
                self._client[self._source.database_name][self._source.name])
            self._cursor = getattr(own, self._method)(*self._args, **self._kwargs)
        database = self._client[self._source.database_name]
        # A live cursor asks the server again; the getMore that finds the end is billed too.
        talks = self._cursor.alive
        await self._meter.admit()
        try:
            data = await self._cursor.__anext__()  # one find/getMore round trip
        except StopAsyncIteration:
            if talks:
                await self._meter.sample(database)
            raise
        except PyMongoError:
            await self._meter.sample(database)
            raise
        await self._meter.sample(database)
        return data

    async def close(self) -> None:
        if self._cursor is not None:
            await self._cursor.close()
            self._cursor = None
        if self._client is not None:
            self._slots.release(self._client)
            self._client = None


class RequestUnitAccounting:
    """Owns the metering clients of one run; wraps the sides that are Cosmos DB."""

    def __init__(self, metrics: RunMetrics, *, source: Endpoint | None = None,
                 source_kind: str = "auto", target: Endpoint | None = None,
                 target_kind: str = "auto", ru_per_second: float | None = None,
                 shared_buckets: Mapping[str, RequestUnitBucket] | None = None) -> None:
        self.metrics = metrics
        self.ru_per_second = ru_per_second
        # A database run's budget: one bucket per side for all its collections (their
        # owner applies `dataworks throttle`); None: this run's own buckets.
        self.shared_buckets = shared_buckets
        self.buckets: list[RequestUnitBucket] = []
        self.source = source if source and resolve_kind(source_kind, source.uri) == "cosmos" \
            else None
        self.target = target if target and resolve_kind(target_kind, target.uri) == "cosmos" \
            else None
        self.meters: dict[str, RequestUnitMeter] = {}
        self._slots: list[_Slots] = []

    @property
    def active(self) -> bool:
        return self.source is not None or self.target is not None

    def reads(self, source: ReadOnlyCollection, slots: int) -> Any:
        if self.source is None:
            return source
        meter = self.meters["source"] = RequestUnitMeter(self.metrics, "source",
                                                         self._bucket("source"))
        pool = _Slots.connect(self.source, slots)
        self._slots.append(pool)
        log.info("source is Cosmos DB: counting request units per read batch")
        return MeteredSource(source, pool, meter)

    def writes(self, collection: Any, slots: int) -> Any:
        if self.target is None:
            return collection
        meter = self.meters["target"] = RequestUnitMeter(self.metrics, "target",
                                                         self._bucket("target"))
        pool = _Slots.connect(self.target, slots)
        self._slots.append(pool)
        log.info("target is Cosmos DB: counting request units per insert")
        return MeteredTarget(collection, pool, meter)

    def _bucket(self, side: str) -> RequestUnitBucket:
        """One budget per Cosmos side, shared by all its readers or writers (unlimited until
        a budget is given, on the command line or by `dataworks throttle`); in a database
        run, shared by every collection too."""
        if self.shared_buckets is not None:
            bucket = self.shared_buckets[side]
        else:
            bucket = RequestUnitBucket(self.ru_per_second or math.inf)
        self.buckets.append(bucket)
        self.metrics.ru_budget = self.ru_per_second
        return bucket

    async def aclose(self) -> None:
        for pool in self._slots:
            await pool.close()
        self._slots.clear()

    async def __aenter__(self) -> RequestUnitAccounting:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class MeteredCounter:
    """Counts on a dedicated single-connection client and reads each count's charge on that
    same connection (count verification on a Cosmos DB source, `verify.counting`)."""

    def __init__(self, endpoint: Endpoint, metrics: RunMetrics) -> None:
        self.endpoint = endpoint
        self.client = connect(endpoint, maxPoolSize=1, minPoolSize=0)
        # the run's totals include what verifying cost ("source:aggregate": a count)
        self.meter = RequestUnitMeter(metrics, "source")

    async def __call__(self, query: dict[str, Any]) -> tuple[int, float | None]:
        from dataworks.verify.counting import COUNT_LIMIT_MS

        database = self.client[self.endpoint.db]
        source = ReadOnlyCollection(database[self.endpoint.collection])
        try:
            count = await source.count_documents(query, maxTimeMS=COUNT_LIMIT_MS)
        except PyMongoError:
            await self.meter.sample(database)  # a throttled count is charged too (0 RU)
            raise
        stats = await self.meter.sample(database)
        return count, None if stats is None else stats.charge

    async def aclose(self) -> None:
        await self.client.close()
