"""Where does `dataworks migrate --live`'s replay spend its time on a mongo-java-server pair?

    .venv/bin/python -m bench.live_bound [--docs 20000] [--rate 2000] [--seconds 5]
                                         [--py-spy FILE] [--keep DIR]

The setting of bench.live_lag (a fresh pair, `--docs` documents loaded, the same writer),
but the three costs measured apart on one backlog of change events:

  1. `dataworks migrate --live --cutover-after-idle 3` copies, and is then frozen (SIGSTOP)
     as soon as its checkpoint leaves phase `copy`;
  2. the writer makes its changes (`--rate` for `--seconds`); they wait in the oplog;
  (a) stream: a plain PyMongo change stream opened where the live run's checkpoint starts,
      as the replay opens it (`fullDocument: updateLookup`, its batch size, max await
      500 ms), reads the backlog: events/s, getMore round trips, the source JVM's CPU;
      then the same without `updateLookup`;
  (b) target: the events read in (a), per batch turned into the replay's writes
      (`live_events.collapse`, replace-with-upsert / delete by `_id`), sent with
      `bulk_write(ordered=False)` to a copy of the loaded collection on the target server;
  (c) replay: the live run is thawed (SIGCONT); the seconds until its checkpoint shows the
      whole backlog applied, its own CPU and the source JVM's CPU over that time
      (`--py-spy FILE` records it with py-spy meanwhile, raw collapsed stacks);
  (a') after the run has exited, (a) with `updateLookup` once more: the JVM is warm then,
      as it is for the replay (the first read is its first change stream).

The run then cuts over by itself (exit 0, `hash: EQUAL` expected). One JSON row is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from pymongo import DeleteOne, MongoClient, ReplaceOne

from bench.live_lag import TARGET_DB, live_checkpoint, seed, write_paced
from bench.run import DB, SOURCE, clean_env, dataworks_argv
from dataworks.config.profiles import DEFAULT_PROFILE, PROFILES
from dataworks.migrations.live_events import change_of, collapse
from dataworks.testing.mongojava import MongoJavaServer

# The replay's batch size: the default profile's, as `migrate` without options uses it.
BATCH = int(PROFILES[DEFAULT_PROFILE]["mig_batch_size"])
MAX_AWAIT_MS = 500


def cpu_s(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def read_backlog(uri: str, resume: dict[str, Any], lookup: str, jvm: int,
                 limit: int | None = None) -> dict[str, Any]:
    """Read the stream from the live run's starting point until a page comes back empty
    (or `limit` events were read)."""
    kwargs: dict[str, Any] = ({"resume_after": resume["token"]} if "token" in resume
                              else {"start_at_operation_time": resume["operation_time"]})
    events: list[Any] = []
    pages, cpu0, started = 0, cpu_s(jvm), time.monotonic()
    with MongoClient(uri) as client, client[DB][SOURCE].watch(
            full_document=lookup, batch_size=BATCH, max_await_time_ms=MAX_AWAIT_MS,
            **kwargs) as stream:
        while limit is None or len(events) < limit:
            change = stream.try_next()
            if change is None:
                break
            events.append(change)
    seconds = time.monotonic() - started
    pages = -(-len(events) // BATCH) + 1  # full pages plus the empty one that ended the read
    return {"events": len(events), "seconds": round(seconds, 2),
            "events_per_s": round(len(events) / seconds, 1), "pages_about": pages,
            "source_cpu_s": round(cpu_s(jvm) - cpu0, 2), "_events": events}


def write_backlog(uri: str, events: list[Any], target_pid: int) -> dict[str, Any]:
    """The replay's writes for `events`, batch by batch, to a copy of the loaded collection."""
    with MongoClient(uri) as client:
        scratch = client["bound_scratch"][SOURCE]
        scratch.drop()
        scratch.insert_many(list(client[TARGET_DB][SOURCE].find().sort("_id", 1)))
        cpu0, started, writes = cpu_s(target_pid), time.monotonic(), 0
        for at in range(0, len(events), BATCH):
            ops: list[Any] = [
                DeleteOne({"_id": c.id}) if c.document is None
                else ReplaceOne({"_id": c.id}, c.document, upsert=True)
                for c in collapse([change_of(e) for e in events[at:at + BATCH]])]
            writes += len(ops)
            scratch.bulk_write(ops, ordered=False)
        seconds = time.monotonic() - started
        cpu = cpu_s(target_pid) - cpu0
        scratch.drop()
    return {"events": len(events), "writes": writes, "seconds": round(seconds, 2),
            "events_per_s": round(len(events) / max(seconds, 1e-9), 1),
            "target_cpu_s": round(cpu, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--py-spy", type=Path, help="record the replay with py-spy (raw)")
    parser.add_argument("--keep", type=Path, help="keep logs and the metrics file here")
    args = parser.parse_args(argv)
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC, load average "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    with tempfile.TemporaryDirectory(prefix="dw-live-bound-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        source = MongoJavaServer(work / "source", oplog=True, heap="1g").start()
        target = MongoJavaServer(work / "target", heap="1g").start()
        assert source.process is not None and target.process is not None
        live: subprocess.Popen[str] | None = None
        try:
            seed(source.uri, args.docs)
            argv_ = [*dataworks_argv(), "migrate", "--quiet", "--live",
                     "--cutover-after-idle", "3", "--metrics-file",
                     str(work / "bound.metrics.json"),
                     "--source-uri", source.uri, "--source-db", DB,
                     "--source-collection", SOURCE, "--target-uri", target.uri,
                     "--target-db", TARGET_DB, "--target-collection", SOURCE]
            out_path, err_path = work / "bound.out", work / "bound.err"
            with open(out_path, "w") as out, open(err_path, "w") as err:
                live = subprocess.Popen(argv_, cwd=work, env=clean_env(), stdout=out,
                                        stderr=err, text=True)
            with MongoClient(target.uri) as client:
                while (state := live_checkpoint(client) or {}).get("phase", "copy") == "copy":
                    if live.poll() is not None:
                        raise RuntimeError(f"migrate exited: {err_path.read_text()}")
                    time.sleep(0.05)
                os.kill(live.pid, signal.SIGSTOP)
                resume = state["resume"]
                ops, changes, writing_s = asyncio.run(
                    write_paced(source.uri, args.rate, args.seconds, args.docs))
                load = os.getloadavg()
                jvm = source.process.pid
                stream = read_backlog(source.uri, resume, "updateLookup", jvm)
                events = stream.pop("_events")
                plain = read_backlog(source.uri, resume, "default", jvm)
                plain.pop("_events")
                written = write_backlog(target.uri, events, target.process.pid)
                spy = None
                if args.py_spy:
                    spy = subprocess.Popen(
                        [str(Path(sys.executable).parent / "py-spy"), "record", "-p",
                         str(live.pid), "-f", "raw", "-o", str(args.py_spy), "-r", "50",
                         "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    time.sleep(0.5)
                cpu_live0, cpu_jvm0 = cpu_s(live.pid), cpu_s(jvm)
                started = time.monotonic()
                os.kill(live.pid, signal.SIGCONT)
                applied = 0
                while applied < len(events) and live.poll() is None:
                    time.sleep(0.05)
                    applied = int((live_checkpoint(client) or {}).get("events_applied", 0))
                replay_s = time.monotonic() - started
                replay = {"events": applied, "seconds": round(replay_s, 2),
                          "events_per_s": round(applied / replay_s, 1),
                          "replay_cpu_s": round(cpu_s(live.pid) - cpu_live0, 2),
                          "source_cpu_s": round(cpu_s(jvm) - cpu_jvm0, 2)}
                if spy is not None:
                    spy.send_signal(signal.SIGINT)
                    spy.wait(timeout=60)
            live.wait(timeout=300)
            # The same read once more, the JVM warm and nothing else running: the first read
            # above is the JVM's first change stream of the session (colder JIT).
            again = read_backlog(source.uri, resume, "updateLookup", source.process.pid)
            again.pop("_events")
            row = {"docs": args.docs, "writer": {"operations": ops, "changes": changes,
                                                 "seconds": round(writing_s, 1)},
                   "load_before_reads": [round(x, 2) for x in load],
                   "stream_updateLookup": stream, "stream_default": plain,
                   "stream_updateLookup_again": again,
                   "target_bulk_write": written, "replay": replay,
                   "exit_code": live.returncode,
                   "hash_equal": "hash: EQUAL" in out_path.read_text()}
            print(json.dumps(row), flush=True)
            return 0 if row["exit_code"] == 0 and row["hash_equal"] else 1
        finally:
            if live is not None and live.poll() is None:
                os.kill(live.pid, signal.SIGCONT)
                live.terminate()
                live.wait(timeout=60)
            source.stop()
            target.stop()


if __name__ == "__main__":
    sys.exit(main())
