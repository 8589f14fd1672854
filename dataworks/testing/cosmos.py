"""A Cosmos DB for MongoDB (RU) stand-in: a loopback proxy in front of a real test server.

    client (PyMongo, DataWorks) ──► CosmosStandIn 127.0.0.1:<port> ──► FerretDB or
                                                                     mongo-java-server

There is no Cosmos account on a test machine; this proxy makes the server behind it answer
the way the project's Cosmos DB notes (COSMOS.md) document, on real sockets, real cursors and
real partial writes. It reads whole messages (OP_MSG; OP_QUERY only for the first
handshake), so it can meter, refuse, shorten or rewrite each request. Behaviour:

- **Request units**: every request except the handshake/session/statistics commands is
  charged with `CostModel` (reads ≈ 1 RU per KB returned, at least 1 RU; writes 5.5 RU per
  KB written, each document rounded up to 1 KB; other commands 1 RU; see
  `dataworks.testing.cosmos_cost`).
- **Provisioned throughput** of N RU/s (`ru_per_s`, `set_budget()` at run time; None =
  unlimited): over budget a request gets error 16500 `TooManyRequests`, on reads
  (`find`, `getMore`, `aggregate`, `count`, ...) as on writes. The message is one of
  `THROTTLE_MESSAGES`: `retry_after` (`Error=16500, RetryAfterMs=<n>, Details=...`, default),
  `request_rate_is_large` (2019 form, no RetryAfterMs) or `insert_error`
  (`Error=16500, Details='Insert error.'`, no RetryAfterMs).
- **Partly applied inserts**: an `insert` that costs more than what is left is cut: the
  documents that start while budget remains are forwarded, the rest come back as
  `writeErrors` with code 16500 (every remaining index when unordered, the first one when
  ordered), although the message says "no changes were made". Nothing left at all: no
  document is applied and they all get 16500 write errors (PyMongo: `WriteError` from
  `insert_one`, `BulkWriteError` from `insert_many`). `update`/`delete` are refused whole.
- **Server-side retry** (`server_side_retry=True`, capability `DisableRateLimitingResponses`):
  throttled requests wait for budget instead; after `server_side_retry_limit_s` (Cosmos:
  60 s) they get error 50 `ExceededTimeLimit`. Inserts are then never cut.
- **`getLastRequestStatistics`** answers, on each connection, the command name, charge and
  duration of the previous metered request on that same connection (a throttled one
  costs 0 RU; before any, an error: the stand-in's choice). It is not itself metered,
  throttled or remembered.
- **Replica set `globaldb`**: `hello`/`isMaster` say `setName: "globaldb"` with this
  proxy's own address as `hosts`/`me`/`primary` (PyMongo discovers the set from there), so
  the portal's connection string works with `ssl=false`; see `portal_uri()`.
  Compression is refused (stripped from the handshake both ways) and `topologyVersion`
  dropped, so drivers poll instead of streaming `hello`.
- **Login**: with `account` and `key` set, clients log in as on Cosmos (user = account,
  password = key, SCRAM-SHA-1 answered by the proxy itself, `dataworks.testing.scram`);
  commands before that get 13 `Unauthorized`, a wrong key 18 `AuthenticationFailed`. The
  server behind needs no users. Without them, authentication passes through untouched.
- **Retryable writes** are refused with Cosmos's message (a write carrying `txnNumber`
  outside a transaction); the error code (2) is this stand-in's choice, COSMOS.md has none.
- **Change streams** need Cosmos's shape: `$changeStream` with `fullDocument:
  "updateLookup"` on one collection, then a `$match` and a `$project` of only `_id`,
  `fullDocument`, `ns`, `documentKey` (else `BadValue`, "Change stream must be followed by
  a match and then a project stage"). Delete events never come out (the proxy adds an
  `operationType` filter); a throttled `getMore` on a change stream returns an empty page.
  `change_history_lost = True` refuses every change stream that resumes with MongoDB's
  error 286 (ChangeStreamHistoryLost), as for a resume point that expired.
- **`throttle_getmores(every, times)`** (a test switch): every `every`-th getMore on a
  query cursor is answered 16500 (up to `times` of them), whatever the budget: throttling
  that lands on getMore deterministically. The server's cursor is left open, as a refused
  request changes nothing.
- **`throttle_sample = True`** (a test switch): every `aggregate` with a `$sample` stage gets
  16500 whatever the budget, as on an account where sampling a large collection never fits
  the provisioned rate; other requests follow the budget as usual.

From a shell (benchmarks, manual runs): `python -m dataworks.testing.cosmos --upstream URI
--ru-per-s 2000` prints the portal URI, serves until SIGINT/SIGTERM, then prints the
counters as JSON.

`counters` (`CosmosCounters`) record what really happened (including each handshake's
`appName`), so tests can prove a fault was
served and not just configured. The stand-in runs its own event loop in a daemon thread
(like `dataworks.testing.proxy.FaultProxy`), so sync tests, async tests and subprocesses
can all use `standin.uri`. Loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote_plus

import bson

from dataworks.testing.cosmos_cost import CostModel, RequestUnitBudget
from dataworks.testing.scram import ScramError, ScramSha1Server
from dataworks.testing.wire import (
    EXHAUST_ALLOWED,
    MORE_TO_COME,
    OP_MSG,
    OP_QUERY,
    Frame,
    OpMsg,
    OpQuery,
    OpReply,
    WireError,
    read_frame,
)

T = TypeVar("T")

REPLICA_SET = "globaldb"
TOO_MANY_REQUESTS = 16500
EXCEEDED_TIME_LIMIT = 50
CURSOR_NOT_FOUND = 43
BAD_VALUE = 2
UNAUTHORIZED = 13
AUTHENTICATION_FAILED = 18
AUTH_COMMANDS = frozenset({"saslstart", "saslcontinue"})
THROTTLE_MESSAGES = ("retry_after", "request_rate_is_large", "insert_error")
RETRYABLE_WRITES_REFUSED = (
    'Retryable writes are not supported. Please disable retryable writes by specifying '
    '"retrywrites=false" in the connection string or an equivalent driver specific config.')
CHANGE_STREAM_SHAPE = "Change stream must be followed by a match and then a project stage"
CHANGE_STREAM_FIELDS = frozenset({"_id", "fullDocument", "ns", "documentKey"})
CHANGE_STREAM_EVENTS = ["insert", "update", "replace"]
RESUME_KEYS = frozenset({"resumeAfter", "startAfter", "startAtOperationTime"})
HISTORY_LOST = 286
HISTORY_LOST_MESSAGE = ("Resume of change stream was not possible, as the resume point may no "
                        "longer be in the oplog.")

HELLO = frozenset({"hello", "ismaster"})
STATISTICS = "getlastrequeststatistics"
# Handshake, session and diagnostic commands: neither charged nor throttled nor remembered.
UNMETERED = HELLO | {"ping", "buildinfo", "endsessions", "killcursors", "saslstart",
                     "saslcontinue", "getnonce", "whatsmyuri", "getparameter",
                     "getcmdlineopts", "hostinfo", "connectionstatus", "serverstatus"}
READS = frozenset({"find", "getmore", "aggregate", "count", "distinct", "listindexes",
                   "listcollections", "listdatabases", "collstats", "dbstats"})
WRITE_STATEMENTS = {"insert": "documents", "update": "updates", "delete": "deletes"}


@dataclass
class CosmosCounters:
    requests: int = 0  # metered requests received (throttled ones included)
    request_units: float = 0.0  # RU charged, what the account would bill
    throttled: int = 0  # whole requests answered 16500
    throttled_by_command: dict[str, int] = field(default_factory=dict)
    partial_inserts: int = 0  # inserts cut: a prefix applied, the rest 16500 writeErrors
    documents_refused: int = 0  # documents in those 16500 writeErrors
    server_side_retry_waits: int = 0  # requests held back instead of throttled
    timeouts: int = 0  # error 50 answers after the server-side retry limit
    retryable_writes_refused: int = 0
    change_streams_refused: int = 0
    change_stream_empty_pages: int = 0  # throttled change-stream getMores answered empty
    statistics_answered: int = 0  # getLastRequestStatistics answers with a charge
    statistics_request_units: float = 0.0  # the sum of the charges those answers gave
    charged_by_command: dict[str, float] = field(default_factory=dict)
    app_names: list[str] = field(default_factory=list)  # appName of each handshake
    failed_logins: int = 0
    cursors_lost: int = 0  # getMores answered 43 CursorNotFound (`lose_cursors`)

    def snapshot(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(eq=False)
class _Connection:
    client: asyncio.StreamWriter
    upstream_r: asyncio.StreamReader
    upstream_w: asyncio.StreamWriter
    last: tuple[str, float, float] | None = None  # command, RU, duration ms
    scram: ScramSha1Server | None = None
    authenticated: bool = False


def throttle_text(variant: str, retry_after_ms: int) -> str:
    """The error message of a 16500, in one of the forms seen from real accounts."""
    activity = uuid.uuid4()
    if variant == "retry_after":
        return (f"Error=16500, RetryAfterMs={retry_after_ms}, Details='Response status code "
                f"does not indicate success: TooManyRequests (429); Substatus: 3200; "
                f"ActivityId: {activity}; Reason: (Message: {{\"Errors\":[\"Request rate is "
                f"large. More Request Units may be needed, so no changes were made. Please "
                f"retry this request later. Learn more: http://aka.ms/cosmosdb-error-429\"]}})'")
    if variant == "request_rate_is_large":
        return (f"Message: {{\"Errors\":[\"Request rate is large\"]}}\r\nActivityId: "
                f"{activity}, Request URI: /apps/standin/services/standin/partitions/0/"
                f"replicas/0p/, RequestStats: , SDK: Microsoft.Azure.Documents.Common/2.14.0, "
                f"StatusCode: 429, SubStatusCode: 3200")
    if variant == "insert_error":
        return "Error=16500, Details='Insert error.'"
    raise ValueError(f"unknown throttle message {variant!r}; one of {THROTTLE_MESSAGES}")


@dataclass
class CosmosStandIn:
    upstream_port: int
    upstream_host: str = "127.0.0.1"
    ru_per_s: float | None = None
    cost: CostModel = field(default_factory=CostModel)
    throttle_message: str = "retry_after"
    server_side_retry: bool = False
    server_side_retry_limit_s: float = 60.0
    account: str | None = None  # with `key`: clients must log in (SCRAM-SHA-1) as Cosmos's do
    key: str | None = None
    port: int = 0
    # A test switch: a change stream that resumes (resumeAfter, startAfter,
    # startAtOperationTime) is refused as MongoDB refuses one whose history expired.
    change_history_lost: bool = False
    # A test switch: every `$sample` aggregate is answered 16500, budget or not.
    throttle_sample: bool = False
    counters: CosmosCounters = field(default_factory=CosmosCounters)
    _budget: RequestUnitBudget = field(default_factory=RequestUnitBudget)
    _connections: set[Any] = field(default_factory=set)
    _change_cursors: set[int] = field(default_factory=set)
    _cursors_to_lose: int = 0
    _getmore_throttle: tuple[int, int] = (0, 0)  # (every n-th getMore, times left)
    _getmores_seen: int = 0
    _upstream_sessions: bool | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _server: asyncio.Server | None = None

    def __post_init__(self) -> None:
        if self.upstream_host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the Cosmos DB stand-in only forwards to loopback addresses")
        throttle_text(self.throttle_message, 0)  # validates the variant
        self._budget.set(self.ru_per_s)

    @classmethod
    def in_front_of(cls, uri: str, **settings: Any) -> CosmosStandIn:
        """A (not yet started) stand-in for the single loopback server of `uri`."""
        from pymongo.uri_parser import parse_uri

        nodes = parse_uri(uri)["nodelist"]
        if len(nodes) != 1:
            raise ValueError("the Cosmos DB stand-in fronts exactly one server")
        host, port = nodes[0]
        return cls(upstream_port=port, upstream_host=host, **settings)

    # -- addresses --------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def _userinfo(self) -> str:
        if self.account is None or self.key is None:
            return ""
        return f"{quote_plus(self.account)}:{quote_plus(self.key)}@"

    @property
    def uri(self) -> str:
        return f"mongodb://{self._userinfo}{self.address}/"

    def portal_uri(self, account: str | None = None) -> str:
        """The Azure portal's connection string for this stand-in: only `ssl` differs."""
        app = account or self.account or "acct"
        return (f"mongodb://{self._userinfo}{self.address}/?ssl=false&replicaSet={REPLICA_SET}"
                f"&retrywrites=false&maxIdleTimeMS=120000&appName=@{app}@")

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> CosmosStandIn:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._listen())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="cosmos-standin", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("Cosmos DB stand-in did not start")
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        self._in_loop(self._shutdown)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    def __enter__(self) -> CosmosStandIn:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- run-time settings (call from any thread) -------------------------------------------

    def set_budget(self, ru_per_s: float | None) -> None:
        """Provision `ru_per_s` RU/s from now on (None: unlimited), with a full bucket."""
        self.ru_per_s = ru_per_s
        self._in_loop(lambda: self._budget.set(ru_per_s))

    def set_throttle_message(self, variant: str) -> None:
        throttle_text(variant, 0)
        self.throttle_message = variant

    def set_server_side_retry(self, enabled: bool, limit_s: float | None = None) -> None:
        self.server_side_retry = enabled
        if limit_s is not None:
            self.server_side_retry_limit_s = limit_s

    def lose_cursors(self, getmores: int) -> None:
        """The next `getmores` getMore requests find their cursor gone (43 CursorNotFound),
        as Cosmos DB answers for a cursor that timed out; the server's cursor is closed."""
        def set_it() -> None:
            self._cursors_to_lose = getmores
        self._in_loop(set_it)

    def throttle_getmores(self, every: int, times: int = 1_000_000) -> None:
        """From now on every `every`-th getMore on a query cursor gets 16500 (up to
        `times` of them); `every=0` stops it."""
        def set_it() -> None:
            self._getmore_throttle = (every, times)
            self._getmores_seen = 0
        self._in_loop(set_it)

    def reset_counters(self) -> CosmosCounters:
        def swap() -> CosmosCounters:
            old, self.counters = self.counters, CosmosCounters()
            return old

        return self._in_loop(swap)

    def _in_loop(self, fn: Callable[[], T]) -> T:
        if self._loop is None:
            return fn()

        async def call() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(30)

    # -- connections ----------------------------------------------------------------------

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port or 0, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            conn.client.transport.abort()
            conn.upstream_w.transport.abort()

    async def _handle(self, client_r: asyncio.StreamReader,
                      client_w: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        except OSError:
            client_w.transport.abort()
            return
        conn = _Connection(client_w, up_r, up_w)
        self._connections.add(conn)
        try:
            while True:
                frame = await read_frame(client_r)
                reply = await self._serve(conn, frame)
                if reply is not None:
                    client_w.write(reply.encode())
                    await client_w.drain()
        except (asyncio.IncompleteReadError, OSError, WireError):
            pass
        finally:
            self._connections.discard(conn)
            for writer in (client_w, up_w):
                with contextlib.suppress(Exception):
                    writer.close()

    async def _forward(self, conn: _Connection, frame: Frame, payload: bytes) -> Frame | None:
        conn.upstream_w.write(Frame(frame.request_id, 0, frame.op_code, payload).encode())
        await conn.upstream_w.drain()
        if frame.op_code == OP_MSG and int.from_bytes(payload[:4], "little") & MORE_TO_COME:
            return None  # w=0 write: the server sends no reply
        reply = await read_frame(conn.upstream_r)
        reply.response_to = frame.request_id
        return reply

    @staticmethod
    def _answer(frame: Frame, body: Mapping[str, Any]) -> Frame:
        return Frame(frame.request_id ^ 0x5A5A5A5A, frame.request_id, OP_MSG,
                     OpMsg.of(body).encode())

    async def _serve(self, conn: _Connection, frame: Frame) -> Frame | None:
        if frame.op_code == OP_MSG:
            return await self._serve_msg(conn, frame)
        if frame.op_code == OP_QUERY:
            return await self._serve_query(conn, frame)
        # OP_COMPRESSED cannot come (never negotiated); legacy opcodes are not served.
        raise WireError(f"opcode {frame.op_code} is not served")

    async def _serve_query(self, conn: _Connection, frame: Frame) -> Frame | None:
        """Legacy OP_QUERY: drivers use it for the first hello only."""
        query = OpQuery.parse(frame.payload)
        command = query.query.get("$query", query.query)
        is_hello = next(iter(command), "").lower() in HELLO
        if is_hello:
            self._note_handshake(command)
        reply = await self._forward(conn, frame, query.encode())
        if reply is not None and is_hello:
            answer = OpReply.parse(reply.payload)
            answer.documents = [self._present(doc) for doc in answer.documents]
            reply.payload = answer.encode()
        return reply

    # -- OP_MSG ---------------------------------------------------------------------------

    async def _serve_msg(self, conn: _Connection, frame: Frame) -> Frame | None:
        msg = OpMsg.parse(frame.payload)
        msg.flags &= ~EXHAUST_ALLOWED  # never let the server stream replies
        reply = await self._serve_command(conn, frame, msg)
        # A w=0 write (moreToCome) expects no answer, not even a throttling error.
        return None if msg.flags & MORE_TO_COME else reply

    async def _serve_command(self, conn: _Connection, frame: Frame,
                             msg: OpMsg) -> Frame | None:
        name = msg.command
        key = name.lower()
        if key == STATISTICS:
            return self._answer(frame, self._statistics(conn))
        if key in HELLO:
            body = msg.body
            self._note_handshake(body)
            msg.set_body(body)
            reply = await self._forward(conn, frame, msg.encode())
            if reply is not None:
                answer = OpMsg.parse(reply.payload)
                answer.set_body(self._present(answer.body))
                reply.payload = answer.encode()
            return reply
        if self._login_required:
            if key in AUTH_COMMANDS:
                return self._answer(frame, self._login(conn, key, msg.body))
            if not conn.authenticated and key not in UNMETERED:
                return self._answer(frame, _error(
                    UNAUTHORIZED, f"Command {name} requires authentication", "Unauthorized"))
        if key in UNMETERED:
            self._strip_sessions(msg)
            return await self._forward(conn, frame, msg.encode())
        return await self._metered(conn, frame, msg, name, key)

    @property
    def _login_required(self) -> bool:
        return self.account is not None and self.key is not None

    def _login(self, conn: _Connection, key: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """saslStart/saslContinue answered here: the account's user and key, SCRAM-SHA-1."""
        try:
            if key == "saslstart":
                if body.get("mechanism") != "SCRAM-SHA-1":
                    raise ScramError(f"mechanism {body.get('mechanism')} is not offered")
                conn.scram = ScramSha1Server({str(self.account): str(self.key)})
                payload, done = conn.scram.first(bytes(body["payload"])), False
            elif conn.authenticated:  # the optional empty last step
                payload, done = b"", True
            elif conn.scram is None:
                raise ScramError("saslContinue before saslStart")
            else:
                payload, done = conn.scram.final(bytes(body["payload"])), True
                conn.authenticated = True
        except (ScramError, KeyError, TypeError):
            self.counters.failed_logins += 1
            return _error(AUTHENTICATION_FAILED, "Authentication failed.",
                          "AuthenticationFailed")
        return {"conversationId": 1, "done": done, "payload": bson.Binary(payload), "ok": 1.0}

    def _strip_sessions(self, msg: OpMsg) -> None:
        """Sessions are this proxy's promise when the server behind it has none."""
        if self._upstream_sessions is False and "lsid" in msg.body:
            body = msg.body
            for session_field in ("lsid", "txnNumber", "$clusterTime"):
                body.pop(session_field, None)
            msg.set_body(body)

    async def _metered(self, conn: _Connection, frame: Frame, msg: OpMsg, name: str,
                       key: str) -> Frame | None:
        self.counters.requests += 1
        body = msg.body
        if key in WRITE_STATEMENTS or key == "findandmodify":
            if "txnNumber" in body and "autocommit" not in body:
                self.counters.retryable_writes_refused += 1
                conn.last = (name, 0.0, 0.0)
                return self._answer(frame, _error(BAD_VALUE, RETRYABLE_WRITES_REFUSED,
                                                  "BadValue"))
        self._strip_sessions(msg)
        body = msg.body
        change_stream = key == "aggregate" and _is_change_stream(body)
        if change_stream:
            problem = _change_stream_problem(body)
            if problem:
                self.counters.change_streams_refused += 1
                conn.last = (name, 0.0, 0.0)
                return self._answer(frame, _error(BAD_VALUE, problem, "BadValue"))
            opened = body["pipeline"][0]["$changeStream"]
            if self.change_history_lost and RESUME_KEYS & set(opened):
                conn.last = (name, 0.0, 0.0)
                return self._answer(frame, _error(HISTORY_LOST, HISTORY_LOST_MESSAGE,
                                                  "ChangeStreamHistoryLost"))
            pipeline = list(body["pipeline"])
            pipeline.insert(1, {"$match": {"operationType": {"$in": CHANGE_STREAM_EVENTS}}})
            msg.set_body({**body, "pipeline": pipeline})
        if key == "getmore" and body.get(name) in self._change_cursors \
                and not self._budget.admits():
            self.counters.change_stream_empty_pages += 1
            conn.last = (name, 0.0, 0.0)
            return self._answer(frame, {"cursor": {
                "id": bson.Int64(body[name]), "ns": f"{body.get('$db')}.{body.get('collection')}",
                "nextBatch": []}, "ok": 1.0})
        if key == "getmore" and self._cursors_to_lose > 0 \
                and body.get(name) not in self._change_cursors:
            self._cursors_to_lose -= 1
            self.counters.cursors_lost += 1
            conn.last = (name, 0.0, 0.0)
            kill = OpMsg.of({"killCursors": body.get("collection"),
                             "cursors": [body.get(name)], "$db": body.get("$db")}).encode()
            await self._forward(conn, frame, kill)  # the server's cursor goes too
            return self._answer(frame, _error(
                CURSOR_NOT_FOUND, f"cursor id {body.get(name)} not found", "CursorNotFound"))
        if key == "insert" and not self.server_side_retry:
            return await self._insert(conn, frame, msg, name)
        if key == "getmore" and self._getmore_throttle[0] \
                and body.get(name) not in self._change_cursors:
            every, left = self._getmore_throttle
            self._getmores_seen += 1
            if left > 0 and self._getmores_seen % every == 0:
                self._getmore_throttle = (every, left - 1)
                return self._answer(frame, self._throttle(conn, name))
        if self.throttle_sample and key == "aggregate" and _has_sample(body):
            return self._answer(frame, self._throttle(conn, name))
        refusal = await self._admit(conn, name)
        if refusal is not None:
            return self._answer(frame, refusal)
        started = time.monotonic()
        reply = await self._forward(conn, frame, msg.encode())
        charge = self._cost(key, msg, reply)
        self._bill(conn, name, charge, started)
        if reply is not None and (change_stream or key == "getmore"):
            self._track_change_cursor(change_stream, body.get(name), reply)
        return reply

    async def _admit(self, conn: _Connection, name: str) -> dict[str, Any] | None:
        """None when the request may run now, else the error to answer."""
        if self._budget.admits():
            return None
        if not self.server_side_retry:
            return self._throttle(conn, name)
        self.counters.server_side_retry_waits += 1
        started = time.monotonic()
        deadline = started + self.server_side_retry_limit_s
        while not self._budget.admits():
            left = deadline - time.monotonic()
            if left <= 0:
                self.counters.timeouts += 1
                conn.last = (name, 0.0, (time.monotonic() - started) * 1000)
                return _error(EXCEEDED_TIME_LIMIT, "Error=50, Details='Request timed out. "
                              "Retries due to rate limiting: True.'", "ExceededTimeLimit")
            await asyncio.sleep(min(left, max(0.001, self._budget.retry_after_ms() / 1000)))
        return None

    def _throttle(self, conn: _Connection, name: str) -> dict[str, Any]:
        self.counters.throttled += 1
        by = self.counters.throttled_by_command
        by[name] = by.get(name, 0) + 1
        conn.last = (name, 0.0, 0.0)
        reply = _error(TOO_MANY_REQUESTS, self._throttle_text(), "TooManyRequests")
        if self.throttle_message == "request_rate_is_large":
            reply = {"_t": "OKMongoResponse", **reply}
        return reply

    def _throttle_text(self) -> str:
        return throttle_text(self.throttle_message, self._budget.retry_after_ms())

    async def _insert(self, conn: _Connection, frame: Frame, msg: OpMsg,
                      name: str) -> Frame | None:
        """Insert under the budget: whole, cut to a prefix, or refused."""
        docs = _statements(msg, "documents")
        left = self._budget.available()
        ordered = msg.body.get("ordered", True)
        if left <= 0:  # nothing applied: every document is a 16500 write error
            self._throttle(conn, name)
            return self._answer(frame, {"n": 0, "writeErrors": self._write_errors(
                0, len(docs), ordered), "ok": 1.0})
        fit, spent = 0, 0.0
        for doc in docs:  # a document is applied if budget remained when it started
            if spent >= left:
                break
            spent += self.cost.write_one(len(doc))
            fit += 1
        started = time.monotonic()
        if fit == len(docs):
            reply = await self._forward(conn, frame, msg.encode())
            self._bill(conn, name, self.cost.write(map(len, docs)), started)
            return reply
        if "documents" in msg.sequences:
            msg.sequences["documents"] = docs[:fit]
        else:
            msg.set_body({**msg.body, "documents": msg.body["documents"][:fit]})
        reply = await self._forward(conn, frame, msg.encode())
        self._bill(conn, name, self.cost.write(len(doc) for doc in docs[:fit]), started)
        self.counters.partial_inserts += 1
        self.counters.documents_refused += len(docs) - fit
        if reply is None:
            return None
        answer = OpMsg.parse(reply.payload)
        body = answer.body
        if body.get("ok") == 1:
            errors = list(body.get("writeErrors", []))
            if not (ordered and errors):  # an ordered insert already stopped at its error
                errors += self._write_errors(fit, len(docs), ordered)
            answer.set_body({**body, "writeErrors": errors})
            reply.payload = answer.encode()
        return reply

    def _write_errors(self, start: int, end: int, ordered: bool) -> list[dict[str, Any]]:
        """16500 for documents start..end-1 (only the first when ordered: the batch stops)."""
        text = self._throttle_text()
        indexes = [start] if ordered else range(start, end)
        return [{"index": i, "code": TOO_MANY_REQUESTS, "errmsg": text} for i in indexes]

    def _cost(self, key: str, msg: OpMsg, reply: Frame | None) -> float:
        if key in READS:
            return self.cost.read(len(reply.payload) if reply is not None else 0)
        if key in WRITE_STATEMENTS:
            return self.cost.write(map(len, _statements(msg, WRITE_STATEMENTS[key])))
        if key == "findandmodify":
            return self.cost.write([len(msg.body_raw)])
        return round(self.cost.other_ru, 2)

    def _bill(self, conn: _Connection, name: str, charge: float, started: float) -> None:
        self._budget.charge(charge)
        self.counters.request_units += charge
        by = self.counters.charged_by_command
        by[name] = by.get(name, 0.0) + charge
        conn.last = (name, charge, round((time.monotonic() - started) * 1000, 2))

    def _statistics(self, conn: _Connection) -> dict[str, Any]:
        if conn.last is None:
            return _error(BAD_VALUE, "no request has run on this connection yet", "BadValue")
        command, charge, duration = conn.last
        self.counters.statistics_answered += 1
        self.counters.statistics_request_units += charge
        return {"_t": "GetRequestStatisticsResponse", "ok": 1.0, "CommandName": command,
                "RequestCharge": float(charge), "RequestDurationInMilliSeconds": float(duration)}

    def _track_change_cursor(self, opened: bool, cursor_id: Any, reply: Frame) -> None:
        if not opened and cursor_id not in self._change_cursors:
            return
        answer = OpMsg.parse(reply.payload).body
        new_id = answer.get("cursor", {}).get("id", 0)
        if opened and new_id:
            self._change_cursors.add(new_id)
        elif not opened and not new_id:
            self._change_cursors.discard(cursor_id)

    def _note_handshake(self, hello: dict[str, Any]) -> None:
        """Refuse compression; remember the appName a driver's first hello announces."""
        hello.pop("compression", None)
        if self._login_required:  # the login is ours: no speculative one, no mechanism list
            hello.pop("speculativeAuthenticate", None)
            hello.pop("saslSupportedMechs", None)
        app = hello.get("client", {}).get("application", {}).get("name")
        if app is not None:
            self.counters.app_names.append(app)

    def _present(self, hello: dict[str, Any]) -> dict[str, Any]:
        """The server's hello, as Cosmos DB's: replica set `globaldb`, no compression."""
        hello.pop("compression", None)
        hello.pop("topologyVersion", None)
        self._upstream_sessions = "logicalSessionTimeoutMinutes" in hello
        hello.setdefault("logicalSessionTimeoutMinutes", 30)
        hello.update(setName=REPLICA_SET, setVersion=1, hosts=[self.address], me=self.address,
                     primary=self.address, secondary=False, tags={"region": "Stand-in"})
        return {"_t": "IsMasterResponse", **hello}


def _error(code: int, message: str, code_name: str) -> dict[str, Any]:
    return {"ok": 0.0, "errmsg": message, "code": code, "codeName": code_name}


def _statements(msg: OpMsg, field_name: str) -> list[bytes]:
    """A write's documents/statements as raw BSON, from a document sequence or the body."""
    if field_name in msg.sequences:
        return msg.sequences[field_name]
    return [bson.encode(doc) for doc in msg.body.get(field_name, [])]


def _has_sample(body: Mapping[str, Any]) -> bool:
    return any(isinstance(stage, Mapping) and "$sample" in stage
               for stage in body.get("pipeline") or [])


def _is_change_stream(body: Mapping[str, Any]) -> bool:
    pipeline = body.get("pipeline") or []
    return bool(pipeline) and isinstance(pipeline[0], Mapping) and "$changeStream" in pipeline[0]


def _change_stream_problem(body: Mapping[str, Any]) -> str | None:
    """Why Cosmos DB would refuse this change stream, or None."""
    if not isinstance(body.get("aggregate"), str):
        return "Expected type string but found int."  # database/cluster-wide watch
    pipeline = body["pipeline"]
    stages = pipeline[1:]
    if len(stages) != 2 or "$match" not in stages[0] or "$project" not in stages[1]:
        return CHANGE_STREAM_SHAPE
    projected = stages[1]["$project"]
    if not set(projected) <= CHANGE_STREAM_FIELDS or not all(projected.values()):
        return "Change stream $project may only include _id, fullDocument, ns and documentKey"
    if pipeline[0]["$changeStream"].get("fullDocument") != "updateLookup":
        return "Change stream requires fullDocument: 'updateLookup'"
    return None


def main(argv: list[str] | None = None) -> int:
    """Run a stand-in in the foreground; print its portal URI; counters as JSON at the end."""
    import argparse
    import json
    import signal

    parser = argparse.ArgumentParser(prog="python -m dataworks.testing.cosmos",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="URI of the loopback server behind")
    parser.add_argument("--port", type=int, default=0, help="listening port (default: free)")
    parser.add_argument("--ru-per-s", type=float, default=None, help="budget (default: none)")
    parser.add_argument("--throttle-message", choices=THROTTLE_MESSAGES, default="retry_after")
    parser.add_argument("--server-side-retry", type=float, default=None, metavar="LIMIT_S",
                        help="hold throttled requests up to LIMIT_S, then error 50")
    parser.add_argument("--account", default=None)
    parser.add_argument("--key", default=None, help="account key (clients must log in)")
    args = parser.parse_args(argv)
    standin = CosmosStandIn.in_front_of(
        args.upstream, port=args.port, ru_per_s=args.ru_per_s,
        throttle_message=args.throttle_message, account=args.account, key=args.key,
        server_side_retry=args.server_side_retry is not None,
        server_side_retry_limit_s=args.server_side_retry or 60.0).start()
    print(standin.portal_uri(), flush=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    standin.stop()
    print(json.dumps(standin.counters.snapshot(), sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
