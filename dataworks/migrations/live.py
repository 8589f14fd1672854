"""Live migration: copy while the application writes, catch up from the change stream, cut over.

    1. open the source's change stream, record where it starts   (checkpoint `<run>:live`)
    2. copy the collection as `dataworks migrate` does           (the engine, its own checkpoint)
    3. replay every change since the start, then keep following  (checkpoint after each batch)
    4. cut over: once no change came for `cutover_after_idle` s, verify (hash) and exit 0

Each replayed change writes the whole document (see `live_events`), so replaying twice is
harmless: after a SIGKILL the same command resumes from the last batch the target
acknowledged, re-applying at most that one batch. Cosmos DB sends no delete events: deletes
are found by comparing `_id`s (`live_deletes`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import bson
from bson import Timestamp
from pymongo import DeleteOne, ReplaceOne
from pymongo.errors import OperationFailure, PyMongoError

from dataworks.checkpoints.store import (
    CheckpointStore,
    open_store,
)
from dataworks.core.clients import ReadOnlyChangeStream, ReadOnlyCollection, connect
from dataworks.core.errors import classify, fatal_error
from dataworks.core.retry import with_retries
from dataworks.core.stop import stop_on_signals
from dataworks.errors import Interrupted, UserError
from dataworks.migrations.engine import MigrationEngine, MigrationOptions
from dataworks.migrations.identity import run_id_for
from dataworks.migrations.live_cutover import CutoverGate
from dataworks.migrations.live_deletes import delete_missing
from dataworks.migrations.live_events import Change, UnsupportedChange, change_of, collapse
from dataworks.migrations.live_lag import Lag
from dataworks.migrations.live_metering import ReplayMetering
from dataworks.migrations.report import MigrationReport
from dataworks.migrations.strategy import StrategyContext
from dataworks.monitoring.logs import event
from dataworks.monitoring.metrics import RunMetrics
from dataworks.monitoring.ru import detect_kind, resolve_kind
from dataworks.verify import verify

log = logging.getLogger("dataworks.migrate.live")
LIVE_FORMAT = 1
# Cosmos DB refuses a change stream without exactly this shape (COSMOS.md, section 6).
COSMOS_PIPELINE: list[dict[str, Any]] = [
    {"$match": {"operationType": {"$in": ["insert", "update", "replace"]}}},
    {"$project": {"_id": 1, "fullDocument": 1, "ns": 1, "documentKey": 1}},
]
# Server errors that mean "the history behind your resume point is gone".
HISTORY_LOST_CODES = frozenset({136, 260, 280, 286})  # CappedPositionLost, InvalidResumeToken,
# ChangeStreamFatalError, ChangeStreamHistoryLost
MAX_AWAIT_MS = 500
LAG_TICK_S = 0.5  # how often the lag is brought up to date while a page is pending


@dataclass(frozen=True)
class LiveOptions:
    cutover_after_idle: float | None = None  # None: follow until stopped
    delete_check_interval: float = 60.0  # Cosmos DB: seconds between `_id` count checks
    max_await_ms: int = MAX_AWAIT_MS


def live_id(run_id: str) -> str:
    return f"{run_id}:live"


def cutover_id(run_id: str) -> str:
    """Where `migrate --cutover` leaves its request for the running live run."""
    return f"{run_id}:cutover"


async def request_cutover(options: MigrationOptions) -> str:
    """`migrate --cutover`: ask the live run of this identity (through its checkpoint store)
    to finish once it has caught up: verify, and exit 0 when EQUAL. Returns the run id."""
    client = connect(options.target)
    try:
        store = open_store(options.checkpoint_store, client)
        run_id = run_id_for(options.source, options.target, options.strategy_ref)
        state = await store.load(live_id(run_id))
        if state is None or state.get("finished"):
            raise UserError(
                f"no live migration to cut over: run {run_id} has "
                + ("already cut over" if state else "no live checkpoint"),
                hint="give --cutover the same source, target, strategy and --checkpoint-store "
                "as the live run")
        await store.save(cutover_id(run_id), {"run_id": run_id, "requested_at": time.time()})
        return run_id
    finally:
        await client.close()


@dataclass(frozen=True)
class Page:
    """What one read of the stream gave, and when its last round trip was asked for."""

    events: list[Any]
    asked_at: float  # Unix time
    asked_mono: float  # the same moment, monotonic (the cutover gate's clock)


class ResumePointLost(UserError):
    pass


def not_supported(what: str, hint: str | None = None) -> UserError:
    return UserError(f"not supported yet: {what}", hint=hint)


class LiveMigration:
    def __init__(self, options: MigrationOptions, live: LiveOptions,
                 metrics: RunMetrics | None = None, *, stop: asyncio.Event | None = None,
                 gate: CutoverGate | None = None) -> None:
        """`stop` and `gate`: a database run's, shared by all its collections (None: this
        collection is the whole run)."""
        self.options = options
        self.live = live
        self.metrics = metrics or RunMetrics()
        self.shared_stop = stop is not None
        self.stop = stop or asyncio.Event()
        self.gate = gate
        self.member = options.source.namespace  # this collection's name at the gate
        self.cosmos = resolve_kind(options.source_kind, options.source.uri) == "cosmos"
        self.run_id = run_id_for(options.source, options.target, options.strategy_ref)
        self.key = live_id(self.run_id)
        self.state: dict[str, Any] = {}
        self.strategy: Any = None
        self.metering: ReplayMetering | None = None

    async def run(self) -> MigrationReport:
        opts = self.options
        source_client, target_client = connect(opts.source), connect(opts.target)
        try:
            # `auto`: by host name, else by the server's own replies (COSMOS.md §7)
            opts.source_kind = await detect_kind(opts.source_kind, opts.source, source_client)
            self.cosmos = opts.source_kind == "cosmos"
            source = ReadOnlyCollection(source_client[opts.source.db][opts.source.collection])
            target = target_client[opts.target.db][opts.target.collection]
            store = open_store(opts.checkpoint_store, target_client)
            return await self._run(source, target, store)
        finally:
            await source_client.close()
            await target_client.close()

    async def _run(self, source: ReadOnlyCollection, target: Any,
                   store: CheckpointStore) -> MigrationReport:
        finished = await self.prepare(source, store)
        if finished is not None:
            return finished
        # The engine handles Ctrl-C/SIGTERM during the copy. A strategy that splits documents
        # is refused at the first change it splits (the replay cannot find the parts).
        report = await self.copy()
        return await self.follow(source, target, store, report)

    def check(self, source: ReadOnlyCollection) -> None:
        """What live mode refuses for this collection's strategy (before anything starts)."""
        opts = self.options
        self.strategy = opts.strategy_cls(StrategyContext(
            source=source, source_namespace=opts.source.namespace,
            target_namespace=opts.target.namespace, batch_size=opts.batch_size))
        if self.strategy.build_query() or self.strategy.projection() is not None:
            raise not_supported("--live with a strategy that selects documents (build_query) "
                                "or fields (projection)",
                                hint="run without --live, or move the selection into transform")

    async def prepare(self, source: ReadOnlyCollection,
                      store: CheckpointStore) -> MigrationReport | None:
        """Step 1, before any document is read: the saved starting point, or a new one from
        a stream opened now. Returns the report when this live run has already cut over."""
        opts, run_id, key = self.options, self.run_id, self.key
        if self.strategy is None:
            self.check(source)
        if opts.drop_target or opts.force_from_start:
            await store.delete(key)
        state = await store.load(key)
        if state is not None and state.get("finished"):
            report = MigrationReport(run_id=run_id, source=opts.source.display(),
                                     target=opts.target.display(), strategy=opts.strategy_ref,
                                     checkpoint_store=store.description, status="nothing to do")
            report.resumed_from = int(state.get("copied", 0))
            report.live = {"events_applied_total": state.get("events_applied", 0),
                           "cut_over": True}
            return report
        if state is None:
            if not (opts.drop_target or opts.force_from_start) \
                    and await store.load(run_id) is not None:
                raise UserError(
                    f"{opts.source.namespace} has a checkpoint from a migration without "
                    "--live: the changes made since it started are unknown, so --live cannot "
                    "continue it",
                    hint="add --force-from-start (or --drop-target) to start a live run")
            with self._signal_handlers():
                state = await self._start(source, run_id)
                await self._save(store, key, state)
            if self.stop.is_set():
                raise Interrupted("stopped before the copy began; the live run's starting "
                                  f"point is saved ({store.description})",
                                  hint="run the same command again to continue")
        self.state = state
        return None

    async def follow(self, source: ReadOnlyCollection, target: Any, store: CheckpointStore,
                     report: MigrationReport) -> MigrationReport:
        """Steps 3 and 4: replay, follow, cut over (after `copy`)."""
        state = self.state
        with self._signal_handlers():
            state["copied"] = report.resumed_from + report.written + report.already_present
            if state.get("phase") == "copy":
                state["phase"] = "replay"
                await self._save(store, self.key, state)
            await self.strategy.on_start()
            # Cosmos DB: the replay's reads within the RU budget, as the copy's (live_metering)
            self.metering = ReplayMetering(self.options, self.metrics) if self.cosmos else None
            try:
                async with (self.metering.budget(store, self.run_id) if self.metering
                            else contextlib.nullcontext()):
                    await self._follow(source, target, store, self.key, state, self.strategy,
                                       report)
            finally:
                if self.metering is not None:
                    await self.metering.aclose()
        return report

    # -- 1. where the stream starts -------------------------------------------------------

    async def _start(self, source: ReadOnlyCollection, run_id: str) -> dict[str, Any]:
        """Open the stream before the first document is read and keep its starting point:
        a resume token, or the operation time where the server has no token yet."""
        stream = await with_retries(lambda: self._watch(source, {}), self.options.retry,
                                    what="opening the source's change stream")
        try:
            token = stream.resume_token
            at = stream.start_at_operation_time
        finally:
            await stream.close()
        if token is not None:
            start: dict[str, Any] = {"token": _plain(token)}
        elif isinstance(at, Timestamp):
            start = {"operation_time": at}
        else:
            raise not_supported("--live on a source whose change stream gives neither a resume "
                                "token nor an operation time")
        event(log, "live_started", "change stream opened; copying", run_id=run_id)
        return {"format": LIVE_FORMAT, "run_id": run_id, "kind": "live",
                "source": self.options.source.display(),
                "target": self.options.target.display(), "strategy": self.options.strategy_ref,
                "phase": "copy", "start": start, "resume": start, "events_applied": 0,
                "deleted_by_id_check": 0, "finished": False}

    async def _watch(self, source: ReadOnlyCollection, resume: Mapping[str, Any]) -> Any:
        kwargs: dict[str, Any] = {}
        if "token" in resume:
            kwargs["resume_after"] = resume["token"]
        elif "operation_time" in resume:
            kwargs["start_at_operation_time"] = resume["operation_time"]
        pipeline = COSMOS_PIPELINE if self.cosmos else []
        return await source.raw.change_stream(pipeline, full_document="updateLookup",
                                              batch_size=self.options.batch_size,
                                              max_await_time_ms=self.live.max_await_ms,
                                              **kwargs)

    # -- 2. the copy ----------------------------------------------------------------------

    async def copy(self) -> MigrationReport:
        """Step 2, the ordinary engine, without its end-of-copy verification: the source moves
        while it copies, so only the verification at cutover means something."""
        finishing = dataclasses.replace(self.options.finishing, verify_mode="none")
        options = dataclasses.replace(self.options, finishing=finishing)
        engine = MigrationEngine(options, self.metrics)
        if self.shared_stop:
            engine.stop = self.stop  # one Ctrl-C stops every collection of a database run
        report = await engine.run()
        if report.status == "nothing to do":  # copied by an earlier run: the replay goes on
            report.status = "completed"
            report.warnings = [w for w in report.warnings if "already finished" not in w]
        report.warnings = [w for w in report.warnings if "source changed" not in w]
        return report

    # -- 3. replay and follow -------------------------------------------------------------

    async def _follow(self, source: ReadOnlyCollection, target: Any, store: CheckpointStore,
                      key: str, state: dict[str, Any], strategy: Any,
                      report: MigrationReport) -> None:
        """Replay and follow. The next page is read while the one before is applied and its
        checkpoint saved (`_read_pages`); applying and saving stay in order, page after page,
        so the checkpoint never passes what the target acknowledged and a kill re-applies at
        most the one page whose save it interrupted."""
        live, opts = self.live, self.options
        transform = strategy.transform if strategy.transforms() else None
        resumed_from = int(state.get("events_applied", 0))
        applied = 0
        started = now = time.monotonic()
        last_change = last_check = now
        lag = Lag(timed=not self.cosmos)
        state["lag_s"] = None  # unknown until this run's first page (not an earlier run's)
        stats: dict[str, Any] = {"phase": "replay", "events_applied": resumed_from,
                                 "events_per_s": 0.0, "lag_s": None}
        self.metrics.live = stats
        event(log, "live_replay",
              f"{self.member}: replaying changes from event {resumed_from:,}",
              resumed_from=resumed_from, collection=self.member)
        try:
            if self.metering is not None:
                async with self.metering.request(self.metering.stream):
                    stream = await self._watch(self.metering.stream, state["resume"])
            else:
                stream = await self._watch(source, state["resume"])
        except OperationFailure as exc:
            raise _resume_error(exc, opts.source.names.uri) from exc
        verdict: dict[str, Any] | None = None
        gate = self.gate or CutoverGate(store, cutover_id(self.run_id),
                                        live.cutover_after_idle, [self.member])
        pages: asyncio.Queue[Page | Exception] = asyncio.Queue(maxsize=1)
        async with stream:
            reader = asyncio.create_task(self._read_pages(stream, pages),
                                         name=f"dataworks-live-read {self.member}")
            try:
                while not self.stop.is_set():
                    try:
                        page = await asyncio.wait_for(pages.get(), LAG_TICK_S)
                    except TimeoutError:  # a page is slow to come: the lag grows meanwhile
                        stats["lag_s"] = lag.seconds()
                        continue
                    if isinstance(page, OperationFailure):
                        raise _resume_error(page, opts.source.names.uri) from page
                    if isinstance(page, Exception):
                        raise page
                    events = page.events
                    now = time.monotonic()
                    if events:
                        count = await self._apply(target, events, transform)
                        applied += count
                        state["events_applied"] = resumed_from + applied
                        state["resume"] = {"token": _plain(events[-1]["_id"])}
                        lag.applied(_event_time(events[-1]))
                        state["lag_s"] = stats["lag_s"] = lag.seconds()
                        await self._save(store, key, state)
                        last_change = now
                        event(log, "live_applied", f"applied {count} change events",
                              level=logging.DEBUG, events=count,
                              events_applied=state["events_applied"], collection=self.member)
                    else:  # an empty page: caught up as of when it was asked for
                        lag.caught_up(page.asked_at)
                        stats["lag_s"] = state["lag_s"] = lag.seconds()
                    stats["events_applied"] = state["events_applied"]
                    stats["events_per_s"] = round(applied / max(now - started, 1e-9), 1)
                    if self.cosmos and now - last_check >= live.delete_check_interval:
                        await self._check_deletes(source, target, store, key, state,
                                                  full=False)
                        last_check = time.monotonic()
                    # An empty page tells how things stood when it was asked for, which may
                    # be well before now (it waited while a page was applied; the process
                    # was paused): the gate measures idleness up to then.
                    if await gate.due(self.member, caught_up=not events,
                                      last_change=last_change,
                                      now=now if events else page.asked_mono,
                                      asked_at=page.asked_at):
                        verdict = await self._cutover(source, target, store, key, state,
                                                      transform)
                        await gate.done()
                        break
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
        report.live = {
            "events_applied": applied, "events_applied_total": state["events_applied"],
            "resumed_from_event": resumed_from, "deleted_by_id_check":
            state.get("deleted_by_id_check", 0), "lag_s": state.get("lag_s"),
            "events_per_s": stats["events_per_s"], "cut_over": verdict is not None,
            # `duration_s` is the copy's; this is the replay's, up to cutover or stop
            "replay_s": round(time.monotonic() - started, 1),
        }
        if verdict is None:
            await self._save(store, key, state)
            raise Interrupted(
                f"stopped following changes after {state['events_applied']:,} events; the "
                f"checkpoint holds the last applied one ({store.description})",
                hint="run the same command again to continue")
        report.verification = verdict
        if verdict.get("equal"):
            state["finished"] = True
            state["phase"] = "done"
            await self._save(store, key, state)
        event(log, "live_cutover", "cut over: " + ("EQUAL" if verdict.get("equal")
                                                   else "DIFFERENT"),
              events_applied=state["events_applied"])

    async def _read_pages(self, stream: Any, pages: asyncio.Queue[Page | Exception]) -> None:
        """Read batches into `pages` (one ahead of the one being applied); a failure is
        handed over too, so it is raised after the pages read before it are applied."""
        try:
            while True:
                page = await self._next_batch(stream)
                await pages.put(page)
                if not page.events:
                    await self._idle_back_off(page)
        except Exception as exc:  # noqa: BLE001 - raised by the applying loop, in order
            await pages.put(exc)

    async def _idle_back_off(self, page: Page) -> None:
        """Caught up, and the empty page came back sooner than the `max_await_ms` it asked
        the server to wait (mongo-java-server ignores it; so may other servers): wait the
        rest before asking again, as a server that honours it would have. Otherwise a
        caught-up replay sends getMores back to back: each one a whole-oplog scan on
        mongo-java-server, request units on Cosmos DB. Only after an empty page: while
        events flow, the next page is asked for at once."""
        remaining = self.live.max_await_ms / 1000 - (time.monotonic() - page.asked_mono)
        if remaining > 0:
            await asyncio.sleep(remaining)

    async def _next_batch(self, stream: Any) -> Page:
        """Up to one batch of events, and when the last page was asked for.
        Stops at the first empty page (caught up, or a throttled Cosmos DB page: both only
        mean "nothing more right now"), and once a page is handed out: asking again would
        cost one more round trip per batch (on MongoDB up to max_await_ms while nothing new
        has come) before the events in hand are applied."""
        events: list[Any] = []
        asked_at, asked_mono = time.time(), time.monotonic()
        while len(events) < self.options.batch_size:
            if events and _page_drained(stream):
                break
            asked_at, asked_mono = time.time(), time.monotonic()
            if self.metering is not None and not _page_held(stream):  # a round trip: billed
                async with self.metering.request(self.metering.stream):
                    change = await stream.try_next()
            else:
                change = await stream.try_next()
            if change is None:
                break
            events.append(change)
        return Page(events, asked_at, asked_mono)

    async def _apply(self, target: Any, events: list[Any], transform: Any) -> int:
        try:
            changes = collapse([change_of(e) for e in events])
        except UnsupportedChange as exc:
            raise not_supported(f"--live across {exc}",
                                hint="start the live migration again with --drop-target") \
                from exc
        ops: list[Any] = []
        for change in changes:
            ops.append(await self._write_for(change, transform))
        if ops:
            try:
                await with_retries(lambda: target.bulk_write(ops, ordered=False),
                                   self.options.retry, what="applying changes to the target")
            except PyMongoError as exc:
                raise fatal_error(classify(exc), side="target",
                                  setting=self.options.target.names.uri) from exc
        return len(events)

    async def _write_for(self, change: Change, transform: Any) -> Any:
        if change.document is None:
            return DeleteOne({"_id": change.id})
        if transform is None:
            return ReplaceOne({"_id": change.id}, change.document, upsert=True)
        result = transform(bson.decode(change.document.raw))
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, list | tuple):
            if len(result) > 1:
                raise not_supported(
                    "--live with a strategy that splits documents: the target documents "
                    "derived from a changed source document cannot be found",
                    hint="run without --live; the checkpoint holds the last applied change")
            result = result[0] if result else None
        if result is None:
            return DeleteOne({"_id": change.id})
        if result.get("_id", change.id) != change.id:
            raise not_supported("--live with a strategy that changes `_id`s: the target "
                                "document of a changed source document cannot be found",
                                hint="run without --live")
        # `_id` first, as the copy's inserts put it (BSON encodes a top-level `_id` first).
        return ReplaceOne({"_id": change.id}, {"_id": change.id, **result}, upsert=True)

    # -- Cosmos DB deletes, and the cutover -----------------------------------------------

    async def _check_deletes(self, source: ReadOnlyCollection, target: Any,
                             store: CheckpointStore, key: str, state: dict[str, Any], *,
                             full: bool) -> None:
        metering = self.metering
        if metering is not None:
            source = metering.checks
        deleted = await with_retries(
            lambda: delete_missing(
                source, target, batch_size=self.options.batch_size, always=full,
                request=(lambda: metering.request(metering.checks)) if metering is not None
                else contextlib.nullcontext),
            self.options.retry, what="comparing _ids for deletes")
        if deleted:
            state["deleted_by_id_check"] = int(state.get("deleted_by_id_check", 0)) + deleted
            await self._save(store, key, state)
            event(log, "live_deletes", f"deleted {deleted} target documents the source no "
                  "longer has (Cosmos DB sends no delete events)", deleted=deleted)

    async def _cutover(self, source: ReadOnlyCollection, target: Any, store: CheckpointStore,
                       key: str, state: dict[str, Any], transform: Any) -> dict[str, Any]:
        if self.cosmos:
            await self._check_deletes(source, target, store, key, state, full=True)
        self.metrics.live["phase"] = "verify"
        result = await verify(source, target, "hash", transform=transform,
                              parallelism=self.options.finishing.parallelism,
                              policy=self.options.retry)
        return result.to_dict(limit=100)

    # -- helpers --------------------------------------------------------------------------

    async def _save(self, store: CheckpointStore, key: str, state: dict[str, Any]) -> None:
        state["updated_at"] = time.time()
        await with_retries(lambda: store.save(key, state), self.options.retry,
                           what="saving the live checkpoint")

    def _signal_handlers(self) -> Any:
        return stop_on_signals(self.stop.set, "applying the batch in hand and saving the "
                               "checkpoint", enabled=self.options.handle_signals)


def _plain(token: Any) -> dict[str, Any]:
    """A resume token as a plain document (the stream hands out raw BSON)."""
    raw = getattr(token, "raw", None)
    return dict(bson.decode(raw)) if raw is not None else dict(token)


def _event_time(change: Any) -> float | None:
    """When the event happened on the source, Unix seconds (None where events carry no
    time: Cosmos DB's required projection drops `clusterTime`)."""
    at = change.get("clusterTime") if hasattr(change, "get") else None
    return float(at.time) if isinstance(at, Timestamp) else None


def _buffered(stream: Any) -> int | None:
    """Events of the stream's last page not handed out yet (ReadOnlyChangeStream.buffered;
    a driver stream keeps them in its cursor's `_data`); None where that cannot be seen."""
    if isinstance(stream, ReadOnlyChangeStream):
        return stream.buffered
    data = getattr(getattr(stream, "_cursor", None), "_data", None)
    return None if data is None else len(data)


def _page_drained(stream: Any) -> bool:
    """Whether the change stream has handed out every event of the page it holds, so that
    its next `try_next` is a round trip (where that cannot be seen: False, and the batch is
    filled as before)."""
    return _buffered(stream) == 0


def _page_held(stream: Any) -> bool:
    """Whether the stream still holds events of its page, so its next `try_next` asks the
    server nothing (where that cannot be seen: it may ask, and is billed as a request)."""
    return (_buffered(stream) or 0) > 0


def _resume_error(exc: OperationFailure, setting: str) -> BaseException:
    message = str(exc)
    if exc.code in HISTORY_LOST_CODES or "resume" in message.lower() \
            or "history" in message.lower():
        return ResumePointLost(
            "the source no longer has the change history this live migration must resume "
            f"from (server: {exc.code} {message.split(', full error')[0]})",
            hint="either run the same command without --live and with --repair, to find and "
            "re-copy what changed meanwhile, or with --force-from-start, to copy everything "
            "again")
    return fatal_error(classify(exc), side="source", setting=setting)

