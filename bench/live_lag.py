"""How far behind does `dataworks migrate --live` stay while the application keeps writing?

    .venv/bin/python -m bench.live_lag [--rates 500,2000] [--docs 20000] [--seconds 30]
                                       [--give-up 240] [--keep DIR] [--probe 5000]
                                       [--bulk-tick-ms 10] [--writers 1]

Per rate R (changes/s): a fresh mongo-java-server pair (the source keeps an oplog, so it has
change streams), the source loaded with `--docs` small documents, then
`dataworks migrate --live --cutover-after-idle 5 --metrics-file F` as a subprocess. Once its
copy is done (the `<run id>:live` checkpoint leaves phase `copy`), a paced writer in this
process changes the source at R changes/s for `--seconds`, then stops. Its changes have the
document shape of `tests.live_writer`: inserts (upserting replaces), updates, replaces and
deletes, 3:3:2:2, on ids 0..2 x `--docs`; updates, replaces and deletes pick ids the source
holds, so each operation is a change (the writer counts those that changed a document). The
operations due in each `--bulk-tick-ms` (10) go as one ordered bulk_write, up to 64 in
flight: one change event each on the source, for a fraction of the writer's CPU (one
operation per round trip, `--bulk-tick-ms 0`, topped out near 1,400 changes/s on this loaded
machine; `--writers N` then splits the rate over N processes on disjoint `_id`s).
The run then cuts over after 5 idle seconds and must exit 0 with `hash: EQUAL`, and the
target must equal the source byte for byte. A run not cut over `--give-up` seconds after
the writer stopped is stopped with SIGTERM and counts as not exact.

Printed per rate (one JSON row): operations and changes the writer achieved per second; the
events applied per second from the writer's start until the replay caught up (the live
checkpoint, saved after every applied batch, polled every 0.5 s) and how long after the
writer stopped that was; the lag in seconds (p50, max) of the metrics file's 5-second
samples, while the writer ran and from its start to the exit, and of the polled checkpoint
(the lag: seconds since the point up to which the target holds every change, the last
applied event's `clusterTime` or when the last empty page was asked for; see
`dataworks.migrations.live_lag`);
the exit code, `hash: EQUAL`, and whether the target is byte-exact. Then, the run over
and the servers still up, the server's own bound: a plain PyMongo change stream opened at
the live run's starting point, as the replay opens it (`updateLookup`, its batch size),
reads the first `--probe` events of the same changes (`bench.live_bound.read_backlog`;
the oplog and collection are as large as at the end of the run by then).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, Self

from pymongo import AsyncMongoClient, DeleteOne, MongoClient, ReplaceOne, UpdateOne

from bench.run import DB, SOURCE, clean_env, dataworks_argv
from dataworks.testing.mongojava import MongoJavaServer
from tests.migration_helpers import raw_by_id

TARGET_DB = f"{DB}_t"
IN_FLIGHT = 64


class IdPool:
    """The `_id`s the source holds, as this (only) writer knows them: updates, replaces and
    deletes pick one that exists and inserts one that does not, so nearly every operation is
    a change (two in flight on one `_id` can still miss; the writer counts what changed)."""

    def __init__(self, present: range, top: int, rng: random.Random,
                 part: int = 0, parts: int = 1) -> None:
        # Writer `part` of `parts` owns the ids i with i % parts == part, so parallel
        # writers never race on one `_id`.
        self._ids = [i for i in present if i % parts == part]
        self._where = {i: n for n, i in enumerate(self._ids)}
        self._top, self._rng, self._part, self._parts = top, rng, part, parts
        self.capacity = len(range(part, top, parts))

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, i: int) -> bool:
        return i in self._where

    def pick(self) -> int:
        return self._ids[self._rng.randrange(len(self._ids))]

    def absent(self) -> int:
        while (i := self._part + self._parts * self._rng.randrange(
                len(range(self._part, self._top, self._parts)))) in self._where:
            pass
        return i

    def add(self, i: int) -> None:
        if i not in self._where:
            self._where[i] = len(self._ids)
            self._ids.append(i)

    def remove(self, i: int) -> None:
        n = self._where.pop(i)
        last = self._ids.pop()
        if last != i:
            self._ids[n], self._where[last] = last, n


def due(rate: float, started: float, done: int) -> float:
    """When change number `done` (from 0) is due at `rate` changes/s."""
    return started + done / rate


def next_change(ids: IdPool, rng: random.Random) -> tuple[int, float]:
    """The next change's `_id` and kind (< 0.3 insert, < 0.6 update, < 0.8 replace, else
    delete), the pool kept as the source will be once it is made."""
    kind = rng.random()
    if (kind < 0.3 or not ids) and len(ids) < ids.capacity:
        kind = min(kind, 0.0)  # an insert (also when nothing is left to change)
        i = ids.absent()
        ids.add(i)
    else:
        i = ids.pick()
        if kind >= 0.8:
            ids.remove(i)
    return i, kind


def operation(i: int, kind: float, v: float) -> Any:
    """The write `change` sends for (i, kind, v), as a bulk_write operation."""
    if kind < 0.3:
        return ReplaceOne({"_id": i}, {"n": i, "v": v, "pad": "i", "tags": ["ins"], "updates": 0},
                          upsert=True)
    if kind < 0.6:
        return UpdateOne({"_id": i}, {"$set": {"v": v}, "$inc": {"updates": 1}})
    if kind < 0.8:
        return ReplaceOne({"_id": i}, {"n": i, "v": v, "pad": "r", "tags": ["a", v],
                                       "updates": 0})
    return DeleteOne({"_id": i})


async def write_ticked(uri: str, rate: float, seconds: float, docs: int, tick: float,
                       seed_: int = 7) -> tuple[int, int, float]:
    """As write_paced, but the operations due in each `tick` seconds go as one ordered
    bulk_write: the same changes reach the source (one change event each), for a fraction
    of the client CPU per change, so the writer is not what limits the rate."""
    rng = random.Random(seed_)
    ids = IdPool(range(docs), 2 * docs, rng)
    client: AsyncMongoClient[Any] = AsyncMongoClient(uri, maxPoolSize=IN_FLIGHT)
    coll = client[DB][SOURCE]
    slots = asyncio.Semaphore(IN_FLIGHT)
    pending: set[asyncio.Task[Any]] = set()
    effective = 0

    async def send(ops: list[Any]) -> None:
        nonlocal effective
        try:
            result = await coll.bulk_write(ops, ordered=True)
            effective += (result.matched_count + result.upserted_count
                          + result.deleted_count)
        finally:
            slots.release()

    try:
        started = time.monotonic()
        end, done = started + seconds, 0
        while (now := time.monotonic()) < end:
            due_now = min(math.floor((now - started) * rate), math.ceil(seconds * rate)) - done
            ops = []
            for _ in range(max(due_now, 0)):
                i, kind = next_change(ids, rng)
                ops.append(operation(i, kind, rng.random()))
            if ops:
                await slots.acquire()
                task = asyncio.create_task(send(ops))
                pending.add(task)
                task.add_done_callback(pending.discard)
                done += len(ops)
            await asyncio.sleep(tick)
        if pending:
            await asyncio.gather(*pending)
        return done, effective, time.monotonic() - started
    finally:
        await client.close()


async def write_paced(uri: str, rate: float, seconds: float, docs: int,
                      seed_: int = 7, part: int = 0, parts: int = 1) -> tuple[int, int, float]:
    """Send `rate` operations/s to the source for `seconds`: the operations sent, those that
    changed a document, and the seconds from the first sent to the last acknowledged.
    Same operations and document fields as tests.live_writer. With `parts` > 1 this is
    writer `part`, on its own share of the `_id`s."""
    rng = random.Random(seed_ + part)
    ids = IdPool(range(docs), 2 * docs, rng, part, parts)
    client: AsyncMongoClient[Any] = AsyncMongoClient(uri, maxPoolSize=IN_FLIGHT)
    coll = client[DB][SOURCE]
    slots = asyncio.Semaphore(IN_FLIGHT)
    pending: set[asyncio.Task[Any]] = set()

    effective = 0  # operations that changed a document (an update of a missing id does not)

    async def change(i: int, kind: float, v: float) -> None:
        nonlocal effective
        try:
            if kind < 0.3:
                result: Any = await coll.replace_one(
                    {"_id": i}, {"n": i, "v": v, "pad": "i", "tags": ["ins"], "updates": 0},
                    upsert=True)
                effective += bool(result.matched_count or result.upserted_id is not None)
            elif kind < 0.6:
                result = await coll.update_one({"_id": i},
                                               {"$set": {"v": v}, "$inc": {"updates": 1}})
                effective += bool(result.matched_count)
            elif kind < 0.8:
                result = await coll.replace_one({"_id": i}, {"n": i, "v": v, "pad": "r",
                                                             "tags": ["a", v], "updates": 0})
                effective += bool(result.matched_count)
            else:
                # Awaited before `+=`: `effective += await ...` would read it before the await.
                deleted = (await coll.delete_one({"_id": i})).deleted_count
                effective += deleted
        finally:
            slots.release()

    try:
        started = time.monotonic()
        end, done = started + seconds, 0
        while (now := time.monotonic()) < end:
            wait = due(rate, started, done) - now
            if wait > 0:
                await asyncio.sleep(wait)
            await slots.acquire()
            i, kind = next_change(ids, rng)
            task = asyncio.create_task(change(i, kind, rng.random()))
            pending.add(task)
            task.add_done_callback(pending.discard)
            done += 1
        if pending:
            await asyncio.gather(*pending)  # a failed change fails the bench
        return done, effective, time.monotonic() - started
    finally:
        await client.close()


def _write_part(uri: str, rate: float, seconds: float, docs: int, part: int,
                parts: int) -> tuple[int, int, float]:
    return asyncio.run(write_paced(uri, rate, seconds, docs, part=part, parts=parts))


def write_with(writers: int, uri: str, rate: float, seconds: float,
               docs: int, tick: float = 0.0) -> tuple[int, int, float]:
    """`writers` processes at rate/writers each (one Python process tops out near 1,400
    changes/s on a loaded 2-core machine); totals as write_paced's."""
    if tick:
        return asyncio.run(write_ticked(uri, rate, seconds, docs, tick))
    if writers == 1:
        return asyncio.run(write_paced(uri, rate, seconds, docs))
    with ProcessPoolExecutor(writers, mp_context=multiprocessing.get_context("spawn")) as pool:
        parts = [pool.submit(_write_part, uri, rate / writers, seconds, docs, k, writers)
                 for k in range(writers)]
        results = [p.result() for p in parts]
    return (sum(r[0] for r in results), sum(r[1] for r in results),
            max(r[2] for r in results))


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def window_figures(samples: list[dict[str, Any]], start: float,
                   end: float) -> dict[str, Any]:
    """Events applied per second and lag (p50, max) from the metrics samples taken between
    `start` and `end` (Unix times): the replay while the writer ran."""
    # By wall clock, comparable with the writer's times (elapsed_s counts from the run's start).
    inside = [(datetime.fromisoformat(s["ts"]).timestamp(), s["live"]) for s in samples
              if "live" in s]
    inside = [(at, live) for at, live in inside if start <= at <= end]
    lags = [live["lag_s"] for _, live in inside if live.get("lag_s") is not None]
    rate = None
    if len(inside) >= 2 and inside[-1][0] > inside[0][0]:
        (t0, first), (t1, last) = inside[0], inside[-1]
        rate = round((last["events_applied"] - first["events_applied"]) / (t1 - t0), 1)
    return {"samples": len(inside), "applied_per_s": rate,
            "lag_p50_s": percentile(lags, 50), "lag_max_s": max(lags) if lags else None}


def seed(uri: str, count: int) -> None:
    """Documents with the fields tests.live_writer writes, in the same order."""
    with MongoClient(uri) as client:
        coll = client[DB][SOURCE]
        for at in range(0, count, 5000):
            coll.insert_many([{"_id": i, "n": i, "v": 0.5, "pad": "x" * 100, "tags": [],
                               "updates": 0} for i in range(at, min(at + 5000, count))])


def live_checkpoint(client: MongoClient[Any]) -> dict[str, Any] | None:
    """The run's `<run id>:live` checkpoint (saved after every applied batch)."""
    for doc in client["dataworks_meta"]["checkpoints"].find():
        if doc["_id"].endswith(":live"):
            return doc
    return None


class CheckpointPoller:
    """(Unix time, events applied, lag s) of the live checkpoint every 0.5 s: finer than the
    metrics file's 5-second samples, for when the replay caught up."""

    def __init__(self, target_uri: str) -> None:
        self.points: list[tuple[float, int, float | None]] = []
        self._uri = target_uri
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with MongoClient(self._uri) as client:
            while not self._stop.wait(0.5):
                state = live_checkpoint(client)
                if state is not None:
                    self.points.append((time.time(), int(state.get("events_applied", 0)),
                                        state.get("lag_s")))

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def caught_up_at(points: list[tuple[float, int, float | None]]) -> float | None:
    """The first time the checkpoint showed its final event count."""
    if not points:
        return None
    final = points[-1][1]
    return next(at for at, applied, _ in points if applied == final)


def run_rate(rate: float, docs: int, seconds: float, work: Path,
             give_up: float, probe: int = 0, writers: int = 1,
             tick: float = 0.0) -> dict[str, Any]:
    # The whole oplog is kept (window 0): the probe after the run reads from the live run's
    # start, more than the launcher's default 50,000 entries back at 2,000 changes/s.
    source = MongoJavaServer(work / f"source-{rate:g}", oplog=True, oplog_window=0,
                             heap="1g").start()
    target = MongoJavaServer(work / f"target-{rate:g}", heap="1g").start()
    try:
        seed(source.uri, docs)
        metrics_file = work / f"live-{rate:g}.metrics.json"
        argv = [*dataworks_argv(), "migrate", "--quiet", "--live", "--cutover-after-idle", "5",
                "--metrics-file", str(metrics_file),
                "--source-uri", source.uri, "--source-db", DB, "--source-collection", SOURCE,
                "--target-uri", target.uri, "--target-db", TARGET_DB,
                "--target-collection", SOURCE]
        load = os.getloadavg()
        started = time.monotonic()
        out_path, err_path = work / f"live-{rate:g}.out", work / f"live-{rate:g}.err"
        with open(out_path, "w") as out_file, open(err_path, "w") as err_file:
            # Files, not pipes: nobody reads a pipe while the writer runs.
            live = subprocess.Popen(argv, cwd=work, env=clean_env(), stdout=out_file,
                                    stderr=err_file, text=True)
        with MongoClient(target.uri) as client:
            while (live_checkpoint(client) or {}).get("phase", "copy") == "copy":
                if live.poll() is not None:
                    raise RuntimeError(f"migrate exited during the copy: {err_path.read_text()}")
                time.sleep(0.2)
        copied_at = time.monotonic() - started
        wall_copied = time.time()
        with CheckpointPoller(target.uri) as poller:
            changes, effective, writing_s = write_with(writers, source.uri, rate, seconds,
                                                       docs, tick)
            stopped_at = time.monotonic() - started
            wall_stopped = time.time()
            gave_up = False
            try:
                live.wait(timeout=give_up)
            except subprocess.TimeoutExpired:  # not caught up: stop it (it saves, exits 130)
                gave_up = True
                live.terminate()
                live.wait(timeout=120)
        out, err = out_path.read_text(), err_path.read_text()
        exited_at = time.monotonic() - started
        caught_up = None if gave_up else caught_up_at(poller.points)
        applied = poller.points[-1][1] if poller.points else 0
        polled_lags = [lag for _, _, lag in poller.points if lag is not None]
        samples = json.loads(metrics_file.read_text())["samples"]
        row = {"rate": rate, "docs": docs, "writers": writers, "bulk_tick_s": tick,
               "load_before": [round(x, 2) for x in load],
               "copy_s": round(copied_at, 1), "writer_s": round(writing_s, 1),
               "operations": changes, "achieved_ops_per_s": round(changes / writing_s, 1),
               "changes": effective, "achieved_changes_per_s": round(effective / writing_s, 1),
               "events_applied": applied, "stopped_by_bench": gave_up,
               "caught_up_after_writer_s": (None if caught_up is None
                                            else round(caught_up - wall_stopped, 1)),
               "applied_per_s_to_caught_up": (
                   None if caught_up is None else round(applied / (caught_up - wall_copied), 1)),
               "metrics_while_writing": window_figures(samples, wall_copied, wall_stopped),
               "metrics_writer_to_exit": window_figures(samples, wall_copied, time.time()),
               "checkpoint_lag_p50_s": percentile(polled_lags, 50),
               "checkpoint_lag_max_s": max(polled_lags) if polled_lags else None,
               "exit_after_writers_s": round(exited_at - stopped_at, 1),
               "exit_code": live.returncode, "hash_equal": "hash: EQUAL" in out}
        row["exact"] = (live.returncode == 0 and row["hash_equal"]
                        and raw_by_id(target.uri, TARGET_DB, SOURCE)
                        == raw_by_id(source.uri, DB, SOURCE))
        if live.returncode != 0:
            row["stderr_tail"] = err[-1500:]
        if probe and source.process is not None:
            from bench.live_bound import read_backlog  # it imports this module

            with MongoClient(target.uri) as client:
                start = (live_checkpoint(client) or {}).get("start")
            if start is not None:
                bare = read_backlog(source.uri, start, "updateLookup", source.process.pid,
                                    limit=probe)
                bare.pop("_events")
                row["bare_stream_after_run"] = {**bare, "load": [round(x, 2)
                                                                 for x in os.getloadavg()]}
        return row
    finally:
        source.stop()
        target.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="500,2000")
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--give-up", type=float, default=240.0,
                        help="seconds after the writer stopped to wait for the cutover before "
                             "stopping the run with SIGTERM (then: not exact)")
    parser.add_argument("--keep", type=Path, help="keep metrics files and logs in this folder")
    parser.add_argument("--probe", type=int, default=5000,
                        help="events a plain change stream reads after each run (0: none)")
    parser.add_argument("--writers", type=int, default=1,
                        help="writer processes sharing the rate, each on its own _ids")
    parser.add_argument("--bulk-tick-ms", type=float, default=10.0,
                        help="send the operations due in each tick as one ordered bulk_write "
                             "(one process; 0: one operation per round trip, which tops out "
                             "near 1,400 changes/s on a loaded 2-core machine)")
    args = parser.parse_args(argv)
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC, load average "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="dw-live-lag-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for rate in (float(r) for r in args.rates.split(",")):
            row = run_rate(rate, args.docs, args.seconds, work, args.give_up, args.probe,
                           args.writers, args.bulk_tick_ms / 1000)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return 0 if all(r["exact"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
