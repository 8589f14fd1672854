"""`dataworks migrate --live` of a whole database against real change streams: a
mongo-java-server pair (the source keeps an oplog), four collections (one renamed by
--ns-from/--ns-to, one through a transforming strategy from --strategy-map), and a writer
process changing all of them during the copy and after it; and the same through the Cosmos DB
stand-in (Cosmos-shaped streams, no delete events).

The target is reached through a FaultProxy: slowed while the copy runs, so the writer's
changes land during the copy whatever the machine's speed, then calmed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import bson
from pymongo import MongoClient

from dataworks.core.clients import RAW_CODEC
from dataworks.testing.cosmos import CosmosStandIn
from dataworks.testing.plugin import COSMOS_TEST_KEY
from dataworks.testing.proxy import FaultProxy
from tests.integration.test_live_migration import (  # noqa: F401 - live_pair is a fixture
    BATCH,
    META,
    TRANSFORM,
    finish,
    live_pair,
    log_events,
    wait_for,
)

SIZES = {"orders": 3_000, "customers": 2_000, "events": 2_000, "notes": 500}


def wait_or_show(process: Any, condition: Any, what: str) -> None:
    """`wait_for`, and on a timeout (or an early exit) the live run's own words."""
    def ready() -> bool:
        if process.poll() is not None and not condition():
            raise AssertionError(f"the live run exited ({process.returncode}) before "
                                 f"{what}:\n{finish(process)[2][-4000:]}")
        return bool(condition())
    try:
        wait_for(ready, what)
    except AssertionError:
        if process.poll() is None:
            process.kill()
            print(finish(process)[2][-4000:])
        raise


def seed_database(uri: str, db: str, scale: int = 1) -> None:
    with MongoClient(uri) as client:
        for name, count in SIZES.items():
            client[db][name].insert_many(
                [{"_id": i, "n": i, "v": 0.5, "pad": "x" * 100, "tags": [], "updates": 0}
                 for i in range(count * scale)])  # the fields live_writer's documents have


def write_map(tmp_path: Path, db: str) -> Path:
    (tmp_path / "mark.py").write_text(TRANSFORM)
    path = tmp_path / "map.toml"
    path.write_text(f'[[namespace]]\nmatch = "{db}.events"\nstrategy = "mark.py:Mark"\n')
    return path


def start_live_db(source_uri: str, target_uri: str, db: str, tmp_path: Path,
                  *extra: str) -> Any:
    env = {**os.environ, "MIG_BATCH_SIZE": str(BATCH), "FRAMEWORK_CHECKPOINT_INTERVAL": "200",
           "FRAMEWORK_MAX_INSERT_WORKERS": "2", "MIG_TRANSFORM_WORKERS": "0"}
    return subprocess.Popen(
        [sys.executable, "-m", "dataworks", "migrate", "--profile", "dev",
         "--log-format", "json", "--debug",
         "--source-uri", source_uri, "--source-db", db,
         "--target-uri", target_uri, "--target-db", f"{db}_t",
         "--ns-from", f"{db}.customers", "--ns-to", f"{db}_t.clients",
         "--strategy-map", str(write_map(tmp_path, db)), "--parallel-collections", "2",
         "--report", str(tmp_path / "report.json"),
         "--metrics-file", str(tmp_path / "metrics.json"),
         "--live", *extra],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def start_writer(uri: str, db: str, seconds: float, rate: float, seed_: int,
                 names: tuple[str, ...] = tuple(SIZES)) -> Any:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.live_writer", uri, db, ",".join(names), str(seconds),
         str(rate), str(seed_)], stdout=subprocess.PIPE, text=True)


def stop_writer(writer: Any) -> None:
    """End a writer started with time to spare (single operations: nothing half-written)."""
    writer.terminate()
    writer.wait(timeout=30)


def change_notes(uri: str, db: str) -> None:
    """An update, a replace, a delete and an insert on `notes`, in live_writer's shape."""
    with MongoClient(uri) as client:
        notes = client[db]["notes"]
        notes.update_one({"_id": 1}, {"$set": {"v": 0.25}, "$inc": {"updates": 1}})
        notes.replace_one({"_id": 2}, {"n": 2, "v": 0.75, "pad": "r", "tags": ["t"],
                                       "updates": 0})
        notes.delete_one({"_id": 3})
        notes.insert_one({"_id": 10_000, "n": 10_000, "v": 0.1, "pad": "i", "tags": ["ins"],
                          "updates": 0})


def checkpoints(target_uri: str, db: str, suffix: str) -> dict[str, dict[str, Any]]:
    """This test's collection checkpoints by target collection: the engines' (suffix "")
    or the live ones (":live")."""
    found = {}
    with MongoClient(target_uri) as client:
        for doc in client[META]["checkpoints"].find():
            run_id = str(doc["_id"])
            if not run_id.startswith(f"migrate_{db}_t_"):
                continue
            if (suffix and run_id.endswith(suffix)) or (not suffix and ":" not in run_id):
                found[run_id] = doc
    return found


def all_streams_started(target_uri: str, db: str) -> bool:
    return len(checkpoints(target_uri, db, ":live")) == len(SIZES)


def all_replaying(target_uri: str, db: str, events: int = 1) -> bool:
    states = checkpoints(target_uri, db, ":live").values()
    return len(states) == len(SIZES) and all(
        s.get("phase") == "replay" and s.get("events_applied", 0) >= events for s in states)


def copy_in_progress(target_uri: str, db: str) -> bool:
    return any(s.get("done_count") and s.get("phase", "copy") == "copy"
               and not s.get("finished") for s in checkpoints(target_uri, db, "").values())


def raw(uri: str, db: str, name: str) -> list[bytes]:
    with MongoClient(uri) as client:
        coll = client[db].get_collection(name, codec_options=RAW_CODEC)
        return [d.raw for d in coll.find({}, sort=[("_id", 1)], batch_size=1000)]


def assert_target_equals_source(source_uri: str, target_uri: str, db: str) -> None:
    for name in ("orders", "notes"):
        assert raw(target_uri, f"{db}_t", name) == raw(source_uri, db, name), name
    assert raw(target_uri, f"{db}_t", "clients") == raw(source_uri, db, "customers")
    assert "customers" not in MongoClient(target_uri)[f"{db}_t"].list_collection_names()
    expected = []
    for doc in map(bson.decode, raw(source_uri, db, "events")):
        if doc["_id"] % 5:
            expected.append(bson.encode({**doc, "n": f"n{doc['n']}"}))
    assert raw(target_uri, f"{db}_t", "events") == expected


def changed_source(uri: str, db: str) -> bool:
    """Has the writer changed something yet (an update, insert or replace)?"""
    with MongoClient(uri) as client:
        return any(client[db][name].find_one({"$or": [{"updates": {"$gt": 0}},
                                                      {"pad": {"$in": ["i", "r"]}}]})
                   for name in SIZES)


def test_live_database_copy_replay_and_cutover(live_pair, unique_db_name, tmp_path):
    source_uri, target_uri = live_pair
    db = unique_db_name
    seed_database(source_uri, db)
    writer = None
    with FaultProxy(int(urlparse(target_uri).port or 27017)) as link:
        link.delay(0.05)  # a slow copy: the writer's changes land during it
        live = start_live_db(source_uri, link.uri, db, tmp_path, "--cutover-after-idle", "3")
        try:
            wait_or_show(live, lambda: all_streams_started(target_uri, db),
                         "every starting point")
            # `notes` gets no changes from the writer: it stays idle while the others change
            writer = start_writer(source_uri, db, seconds=120, rate=80, seed_=21,
                                  names=("orders", "customers", "events"))
            wait_or_show(live, lambda: copy_in_progress(target_uri, db),
                         "a collection copying")
            wait_for(lambda: changed_source(source_uri, db), "the writer's first changes")
            assert copy_in_progress(target_uri, db), "the copy ended before the writer wrote"
            link.calm()
            wait_or_show(live, lambda: all_replaying(target_uri, db, events=0),
                         "every collection replaying")
            # One gate for the run: `notes`, idle for longer than --cutover-after-idle, must
            # not cut over while other collections still change, or this would be lost.
            time.sleep(4)
            assert writer.poll() is None, "the writer stopped before the replay: no changes " \
                "after the copy"
            change_notes(source_uri, db)
            time.sleep(1)  # and more changes to the others after it
            stop_writer(writer)
            code, out, err = finish(live)
        finally:
            for process in (live, writer):
                if process is not None and process.poll() is None:
                    process.kill()
    assert code == 0, out + err[-3000:]
    assert_target_equals_source(source_uri, target_uri, db)

    report = json.loads((tmp_path / "report.json").read_text())
    rows = {r["source"]: r for r in report["collections"]}
    assert set(rows) == {f"{db}.{name}" for name in SIZES}
    assert rows[f"{db}.customers"]["target"] == f"{db}_t.clients"
    for row in rows.values():
        assert row["status"] == "completed" and row["ok"], row
        assert row["verification"]["mode"] == "hash" and row["verification"]["equal"]
        assert row["live"]["cut_over"] is True
        assert row["live"]["events_applied_total"] > 0, row  # the writer touched every one
    assert "live changes per collection" in out
    applied = {e["collection"] for e in log_events(err, "live_applied")}
    assert applied == {f"{db}.{name}" for name in SIZES}

    # Lag per collection: in the metrics file while following ...
    lags: dict[str, list[Any]] = {}
    for sample in json.loads((tmp_path / "metrics.json").read_text())["samples"]:
        for name, stats in sample.get("live", {}).get("collections", {}).items():
            lags.setdefault(name, []).append(stats.get("lag_s"))
    assert set(lags) == {f"{db}.{name}" for name in SIZES}
    assert all(any(isinstance(v, int | float) for v in values) for values in lags.values())
    # ... and in `dataworks checkpoints show` of the database run.
    shown = subprocess.run(
        [sys.executable, "-m", "dataworks", "checkpoints", "show", report["run_id"],
         "--target-uri", target_uri], cwd=tmp_path, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    state = json.loads(shown.stdout)
    for c in state["collections"]:
        assert c["live_checkpoint"]["phase"] == "done"
        assert isinstance(c["live_checkpoint"]["lag_s"], int | float)
        assert c["live"]["events_applied_total"] > 0
    # ... and in `dataworks checkpoints list`, in each collection's row under the run
    listed = subprocess.run(
        [sys.executable, "-m", "dataworks", "checkpoints", "list", "--target-uri", target_uri],
        cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "COLUMNS": "250"})
    assert listed.returncode == 0, listed.stderr
    rows = [line for line in listed.stdout.splitlines() if f"migrate_{db}_t_" in line]
    assert len(rows) == len(SIZES), listed.stdout  # no separate rows for the ':live' records
    assert all("done:" in row and " events, lag " in row for row in rows), listed.stdout


def test_live_database_sigkill_during_copy_and_replay(live_pair, unique_db_name, tmp_path):
    source_uri, target_uri = live_pair
    db = unique_db_name
    seed_database(source_uri, db)
    writer = first = second = None
    with FaultProxy(int(urlparse(target_uri).port or 27017)) as link:
        try:
            link.delay(0.05)  # the kill must land part-way through the copy
            first = start_live_db(source_uri, link.uri, db, tmp_path)
            wait_or_show(first, lambda: all_streams_started(target_uri, db),
                         "every starting point")
            writer = start_writer(source_uri, db, seconds=120, rate=80, seed_=23)
            wait_or_show(first, lambda: copy_in_progress(target_uri, db),
                         "a collection copying")
            first.send_signal(signal.SIGKILL)
            first.wait()
            assert any(s["phase"] == "copy"
                       for s in checkpoints(target_uri, db, ":live").values())
            link.calm()

            second = start_live_db(source_uri, link.uri, db, tmp_path)  # follows until killed
            wait_or_show(second, lambda: all_replaying(target_uri, db, events=BATCH // 10),
                         "every collection replaying")
            assert writer.poll() is None, "the writer must still write during the replay"
            time.sleep(0.5)
            second.send_signal(signal.SIGKILL)
            time.sleep(1)  # changes after the kill, for the third run
            stop_writer(writer)
            _, _, second_err = finish(second)
            killed_at: dict[str, int] = {}
            for e in log_events(second_err, "live_applied"):
                killed_at[e["collection"]] = max(killed_at.get(e["collection"], 0),
                                                 e["events_applied"])
            third = start_live_db(source_uri, link.uri, db, tmp_path,
                                  "--cutover-after-idle", "3")
            code, out, err = finish(third)
        finally:
            for process in (first, second, writer):
                if process is not None and process.poll() is None:
                    process.kill()
    assert code == 0, out + err[-3000:]
    assert_target_equals_source(source_uri, target_uri, db)
    report = json.loads((tmp_path / "report.json").read_text())
    for row in report["collections"]:
        assert row["ok"] and row["verification"]["equal"], row
        # Resumed where the kill left it. A batch is logged after its checkpoint is saved,
        # so the checkpoint holds at least the last logged count; more only by the one batch
        # whose log line the kill cut off. Nothing before it is applied again.
        at = killed_at[row["source"]]
        assert 0 < at <= row["live"]["resumed_from_event"] <= at + BATCH, (row, at)


def test_live_database_stopped_then_cutover_asked_by_a_second_command(
        live_pair, unique_db_name, tmp_path):
    source_uri, target_uri = live_pair
    db = unique_db_name
    seed_database(source_uri, db)
    ask = start_live_db(source_uri, target_uri, db, tmp_path, "--cutover")
    code, _, err = finish(ask)
    assert code == 2 and "no live migration to cut over" in err, err[-3000:]

    # SIGTERM while following: every collection's checkpoint saved, exit 130
    stopped = start_live_db(source_uri, target_uri, db, tmp_path)
    try:
        wait_or_show(stopped, lambda: all_replaying(target_uri, db, events=0),
                     "every collection replaying")
        stopped.send_signal(signal.SIGTERM)
        code, _, err = finish(stopped)
    finally:
        if stopped.poll() is None:
            stopped.kill()
    assert code == 130, err[-3000:]
    assert "run the same command again" in err
    assert all(s["phase"] == "replay" and not s["finished"]
               for s in checkpoints(target_uri, db, ":live").values())

    live = start_live_db(source_uri, target_uri, db, tmp_path)  # no --cutover-after-idle
    try:
        wait_or_show(live, lambda: all_streams_started(target_uri, db), "every starting point")
        writer = start_writer(source_uri, db, seconds=4, rate=80, seed_=29)
        assert writer.wait(timeout=120) == 0
        wait_or_show(live, lambda: all_replaying(target_uri, db, events=1),
                     "every collection replaying the writer's changes")
        time.sleep(3)
        assert live.poll() is None, "a live run without --cutover-after-idle keeps following"
        ask = start_live_db(source_uri, target_uri, db, tmp_path, "--cutover")
        code, out, err = finish(ask)
        assert code == 0, err[-3000:]
        assert "to cut over" in out
        code, out, err = finish(live, timeout=120)
    finally:
        if live.poll() is None:
            live.kill()
    assert code == 0, out + err[-3000:]
    assert_target_equals_source(source_uri, target_uri, db)
    report = json.loads((tmp_path / "report.json").read_text())
    assert all(row["ok"] and row["live"]["cut_over"] for row in report["collections"])
    with MongoClient(target_uri) as client:  # the request was consumed
        assert client[META]["checkpoints"].find_one(
            {"_id": f"{report['run_id']}:cutover"}) is None

    # The same command once more: every collection has cut over, nothing is copied again
    again = start_live_db(source_uri, target_uri, db, tmp_path, "--cutover-after-idle", "1")
    code, out, err = finish(again)
    assert code == 0, out + err[-3000:]
    rows = json.loads((tmp_path / "report.json").read_text())["collections"]
    assert all(r["status"] == "already finished" and r["migrated"] == 0 for r in rows), rows


def test_live_database_from_cosmos_finds_deletes_per_collection(live_pair, unique_db_name,
                                                                 tmp_path):
    """Cosmos DB: restricted streams, no delete events: each collection's `_id` comparison
    finds its own deletes, the renamed one's on its renamed target."""
    source_uri, target_uri = live_pair
    db = unique_db_name
    seed_database(source_uri, db)
    with CosmosStandIn.in_front_of(source_uri, account="acct", key=COSMOS_TEST_KEY) as cosmos:
        live = start_live_db(cosmos.uri, target_uri, db, tmp_path, "--source-kind", "cosmos",
                             "--cutover-after-idle", "3", "--delete-check-interval", "1")
        try:
            wait_or_show(live, lambda: all_streams_started(target_uri, db),
                         "every starting point")
            writer = start_writer(source_uri, db, seconds=8, rate=80, seed_=31)
            assert writer.wait(timeout=120) == 0
            code, out, err = finish(live)
        finally:
            if live.poll() is None:
                live.kill()
        refused = cosmos.counters.change_streams_refused
    assert code == 0, out + err[-3000:]
    assert refused == 0
    assert_target_equals_source(source_uri, target_uri, db)
    rows = {r["source"]: r for r in json.loads((tmp_path / "report.json").read_text())
            ["collections"]}
    for name in ("orders", "customers", "notes"):  # `events` drops some _ids on purpose
        assert rows[f"{db}.{name}"]["live"]["deleted_by_id_check"] > 0, rows[f"{db}.{name}"]


def test_live_database_reports_a_collection_created_during_the_run(live_pair, unique_db_name,
                                                                   tmp_path):
    """A collection the source gains after the streams opened was neither copied nor
    followed: the run must not call the database right (exit 1, the row says why); the same
    command again copies and follows it."""
    source_uri, target_uri = live_pair
    db = unique_db_name
    seed_database(source_uri, db)
    live = start_live_db(source_uri, target_uri, db, tmp_path, "--cutover-after-idle", "3")
    try:
        wait_or_show(live, lambda: all_streams_started(target_uri, db), "every starting point")
        with MongoClient(source_uri) as client:
            client[db]["late"].insert_many([{"_id": i, "n": i} for i in range(50)])
        code, out, err = finish(live)
    finally:
        if live.poll() is None:
            live.kill()
    assert code == 1, out + err[-3000:]
    rows = {r["source"]: r for r in json.loads((tmp_path / "report.json").read_text())
            ["collections"]}
    late = rows[f"{db}.late"]
    assert late["status"] == "failed" and not late["ok"], late
    assert "created on the source after this live run started" in late["error"]
    assert all(r["ok"] for name, r in rows.items() if name != f"{db}.late"), rows
    assert "late" in out

    again = start_live_db(source_uri, target_uri, db, tmp_path, "--cutover-after-idle", "3")
    code, out, err = finish(again)
    assert code == 0, out + err[-3000:]
    assert raw(target_uri, f"{db}_t", "late") == raw(source_uri, db, "late")
    assert_target_equals_source(source_uri, target_uri, db)
