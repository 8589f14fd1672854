"""`dataworks migrate --live` against real change streams: a mongo-java-server pair (the
source keeps an oplog), with a writer process changing the source during the copy and after
it; and through the Cosmos DB stand-in (Cosmos-shaped streams, no delete events).

These tests start their own pair whatever DATAWORKS_TEST_SERVER says: FerretDB has no change
streams, and a test that skipped there would never run in the default suite.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bson
import pytest
from pymongo import MongoClient

from dataworks.core.clients import RAW_CODEC
from dataworks.testing.cosmos import CosmosStandIn
from dataworks.testing.mongojava import MongoJavaServer
from dataworks.testing.plugin import COSMOS_TEST_KEY

DOCS = 3_000
BATCH = 100
META = "dataworks_meta"

# Changes values, not the set of fields: mongo-java-server's replace keeps the replaced
# document's field order (MongoDB takes the new one's), so a transform that added a field
# would leave the target's order differing from a fresh encoding on that server only.
TRANSFORM = """
from dataworks import BaseMigrationStrategy

class Mark(BaseMigrationStrategy):
    def transform(self, doc):
        if doc["_id"] % 5 == 0:
            return None
        doc["n"] = f"n{doc['n']}"
        return doc
"""


@pytest.fixture(scope="module")
def live_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A mongo-java-server source with an oplog (change streams) and a plain target."""
    base = tmp_path_factory.mktemp("live-mongojava")
    source = MongoJavaServer(base / "source", oplog=True, heap="768m").start()
    target = MongoJavaServer(base / "target", heap="768m").start()
    try:
        yield source.uri, target.uri
    finally:
        source.stop()
        target.stop()


def seed(uri: str, db: str, count: int = DOCS) -> None:
    with MongoClient(uri) as client:
        client[db]["orders"].insert_many(
            [{"_id": i, "n": i, "v": 0.5, "pad": "x" * 100, "tags": [], "updates": 0}
             for i in range(count)])  # the fields live_writer's documents have


def start_writer(uri: str, db: str, seconds: float, rate: float, seed_: int = 7) -> Any:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.live_writer", uri, db, "orders", str(seconds), str(rate),
         str(seed_)], stdout=subprocess.PIPE, text=True)


def start_live(source_uri: str, target_uri: str, db: str, cwd: Path, *extra: str) -> Any:
    env = {**os.environ, "MIG_BATCH_SIZE": str(BATCH), "FRAMEWORK_CHECKPOINT_INTERVAL": "200",
           "FRAMEWORK_MAX_INSERT_WORKERS": "2", "MIG_TRANSFORM_WORKERS": "0"}
    return subprocess.Popen(
        [sys.executable, "-m", "dataworks", "migrate", "--profile", "dev",
         "--log-format", "json", "--debug",
         "--source-uri", source_uri, "--source-db", db, "--source-collection", "orders",
         "--target-uri", target_uri, "--target-db", f"{db}_t", "--target-collection", "orders",
         "--live", *extra],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def checkpoint(target_uri: str, db: str, suffix: str = "") -> dict[str, Any] | None:
    """This test's run: the engine's checkpoint, or with suffix ":live" the live one."""
    with MongoClient(target_uri) as client:
        for doc in client[META]["checkpoints"].find():
            ours = doc["_id"].startswith(f"migrate_{db}_t_orders_")
            if ours and doc["_id"].endswith(suffix) and (suffix or ":" not in doc["_id"]):
                return doc
    return None


def wait_for(condition: Any, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def finish(process: Any, timeout: float = 240.0) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def raw_docs(uri: str, db: str) -> list[bytes]:
    with MongoClient(uri) as client:
        coll = client[db].get_collection("orders", codec_options=RAW_CODEC)
        return [d.raw for d in coll.find({}, sort=[("_id", 1)], batch_size=1000)]


def log_events(stderr: str, name: str) -> list[dict[str, Any]]:
    found = []
    for line in stderr.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("event") == name:
            found.append(record)
    return found


def report_row(stdout: str, label: str) -> str:
    for line in stdout.splitlines():
        if label in line:
            return line
    raise AssertionError(f"no '{label}' row in:\n{stdout}")


def live_run_started(target_uri: str, db: str) -> bool:
    return checkpoint(target_uri, db, ":live") is not None


def test_live_copy_replay_and_cutover_byte_equal(live_pair, unique_db_name, tmp_path):
    source_uri, target_uri = live_pair
    db = unique_db_name
    seed(source_uri, db)
    live = start_live(source_uri, target_uri, db, tmp_path, "--cutover-after-idle", "3")
    wait_for(lambda: live_run_started(target_uri, db), "the live run's starting point")
    writer = start_writer(source_uri, db, seconds=8, rate=60)
    assert writer.wait(timeout=120) == 0
    code, out, err = finish(live)
    assert code == 0, err[-3000:]
    assert "hash: EQUAL" in report_row(out, "verification")
    assert "yes" in report_row(out, "cut over")
    # the replay's own time (at least the 3 idle seconds before the cutover) beside the
    # copy's, both within the run's total
    def seconds(label: str) -> float:
        found = re.search(r"([\d,.]+) s", report_row(out, label))
        assert found, out
        return float(found.group(1).replace(",", ""))

    assert 3 <= seconds("replay duration") <= seconds("total duration"), out
    assert seconds("copy duration") + seconds("replay duration") <= seconds("total duration")
    applied = log_events(err, "live_applied")
    assert applied, "the writer's changes never reached the replay"
    source, target = raw_docs(source_uri, db), raw_docs(target_uri, f"{db}_t")
    assert len(source) > 0 and target == source


def test_live_through_a_transforming_strategy(live_pair, unique_db_name, tmp_path):
    source_uri, target_uri = live_pair
    db = unique_db_name
    seed(source_uri, db)
    strategy = tmp_path / "mark.py"
    strategy.write_text(TRANSFORM)
    live = start_live(source_uri, target_uri, db, tmp_path, "--cutover-after-idle", "3",
                      "--strategy", str(strategy))
    wait_for(lambda: live_run_started(target_uri, db), "the live run's starting point")
    writer = start_writer(source_uri, db, seconds=6, rate=60, seed_=11)
    assert writer.wait(timeout=120) == 0
    code, out, err = finish(live)
    assert code == 0, out + err[-3000:]
    assert "hash: EQUAL" in report_row(out, "verification")
    expected = []
    for raw in raw_docs(source_uri, db):
        doc = bson.decode(raw)
        if doc["_id"] % 5:
            expected.append(bson.encode({**doc, "n": f"n{doc['n']}"}))
    assert raw_docs(target_uri, f"{db}_t") == expected


def test_live_sigkill_during_copy_and_replay_resumes_exactly(live_pair, unique_db_name,
                                                             tmp_path):
    source_uri, target_uri = live_pair
    db = unique_db_name
    seed(source_uri, db, 60_000)  # a copy long enough to be caught part-way
    writer = None
    first = start_live(source_uri, target_uri, db, tmp_path)
    try:
        wait_for(lambda: live_run_started(target_uri, db), "the live run's starting point")
        writer = start_writer(source_uri, db, seconds=25, rate=60, seed_=3)

        def copy_in_progress() -> bool:
            state = checkpoint(target_uri, db)
            return bool(state and state.get("done_count") and state.get("phase", "copy") == "copy")

        wait_for(copy_in_progress, "a copy checkpoint")
        first.send_signal(signal.SIGKILL)
        first.wait()
        live_state = checkpoint(target_uri, db, ":live")
        assert live_state is not None and live_state["phase"] == "copy"

        second = start_live(source_uri, target_uri, db, tmp_path)

        def replaying() -> bool:
            state = checkpoint(target_uri, db, ":live")
            return bool(state and state.get("phase") == "replay"
                        and state.get("events_applied", 0) >= 2 * BATCH // 10)

        try:
            wait_for(replaying, "replayed events")
        except AssertionError:
            second.kill()
            print(finish(second)[2][-5000:])
            raise
        time.sleep(0.5)
        second.send_signal(signal.SIGKILL)
        _, _, second_err = finish(second)
        replayed_from = log_events(second_err, "live_replay")
        assert replayed_from and replayed_from[0]["resumed_from"] == 0
        killed_at = max(e["events_applied"] for e in log_events(second_err, "live_applied"))

        assert writer.wait(timeout=120) == 0
        third = start_live(source_uri, target_uri, db, tmp_path, "--cutover-after-idle", "3")
        code, out, err = finish(third)
    finally:
        for process in (first, writer):
            if process is not None and process.poll() is None:
                process.kill()
    if code:  # show what differs, field order included
        src = {bson.decode(r)["_id"]: r for r in raw_docs(source_uri, db)}
        tgt = {bson.decode(r)["_id"]: r for r in raw_docs(target_uri, f"{db}_t")}
        for k in sorted(set(src) | set(tgt)):
            if src.get(k) != tgt.get(k):
                print("differs:", k, src.get(k) and bson.decode(src[k]),
                      tgt.get(k) and bson.decode(tgt[k]))
    assert code == 0, err[-3000:]
    assert "hash: EQUAL" in report_row(out, "verification")
    resumed_from = int(report_row(out, "resumed from event").split("│")[2].strip()
                       .replace(",", ""))
    # The kill came after `killed_at` events were acknowledged; the checkpoint trails by at
    # most the batch whose save the kill interrupted.
    assert killed_at - BATCH <= resumed_from <= killed_at
    assert raw_docs(target_uri, f"{db}_t") == raw_docs(source_uri, db)


def test_live_from_cosmos_finds_deletes_by_id(live_pair, unique_db_name, tmp_path):
    source_uri, target_uri = live_pair
    db = unique_db_name
    seed(source_uri, db)
    with CosmosStandIn.in_front_of(source_uri, account="acct", key=COSMOS_TEST_KEY) as cosmos:
        # no --source-kind: the stand-in answers as Cosmos DB does (hello _t)
        live = start_live(cosmos.uri, target_uri, db, tmp_path,
                          "--cutover-after-idle", "3", "--delete-check-interval", "1")
        wait_for(lambda: live_run_started(target_uri, db), "the live run's starting point")
        writer = start_writer(source_uri, db, seconds=8, rate=60, seed_=5)
        assert writer.wait(timeout=120) == 0
        code, out, err = finish(live)
        refused = cosmos.counters.change_streams_refused
    assert code == 0, err[-3000:]
    assert refused == 0
    assert "hash: EQUAL" in report_row(out, "verification")
    deleted = int(report_row(out, "deleted by _id check").split("│")[2].strip()
                  .replace(",", ""))
    assert deleted > 0
    assert raw_docs(target_uri, f"{db}_t") == raw_docs(source_uri, db)


def test_live_resume_point_lost_exits_2_with_both_ways_on(live_pair, unique_db_name,
                                                          tmp_path):
    source_uri, target_uri = live_pair
    db = unique_db_name
    seed(source_uri, db, 500)
    with CosmosStandIn.in_front_of(source_uri, account="acct", key=COSMOS_TEST_KEY) as cosmos:
        first = start_live(cosmos.uri, target_uri, db, tmp_path, "--source-kind", "cosmos")
        wait_for(lambda: (checkpoint(target_uri, db, ":live") or {}).get("phase") == "replay",
                 "the replay phase")
        time.sleep(1.0)
        first.send_signal(signal.SIGTERM)
        code, _, err = finish(first)
        assert code == 130, err[-3000:]
        assert "run the same command again" in err

        cosmos.change_history_lost = True
        second = start_live(cosmos.uri, target_uri, db, tmp_path, "--source-kind", "cosmos")
        code, out, err = finish(second)
    assert code == 2, err[-3000:]
    assert "no longer has the change history" in err
    assert "--repair" in err and "--force-from-start" in err


def test_live_refuses_what_it_cannot_do_yet(live_pair, unique_db_name, tmp_path):
    source_uri, target_uri = live_pair
    db = unique_db_name
    seed(source_uri, db, 10)
    unacknowledged = subprocess.run(
        [sys.executable, "-m", "dataworks", "migrate", "--profile", "dev",
         "--source-uri", source_uri, "--source-db", db, "--target-uri", target_uri,
         "--live", "--unacknowledged"], cwd=tmp_path, capture_output=True, text=True)
    assert unacknowledged.returncode == 2
    assert "not supported yet: --live with --unacknowledged" in unacknowledged.stderr
    cutover = start_live(source_uri, target_uri, db, tmp_path, "--cutover")
    code, _, err = finish(cutover)
    assert code == 2 and "no live migration to cut over" in err
    with MongoClient(target_uri) as client:
        assert f"{db}_t" not in client.list_database_names()


def test_live_cutover_asked_by_a_second_command(live_pair, unique_db_name, tmp_path):
    source_uri, target_uri = live_pair
    db = unique_db_name
    seed(source_uri, db)
    live = start_live(source_uri, target_uri, db, tmp_path)  # no --cutover-after-idle
    try:
        wait_for(lambda: live_run_started(target_uri, db), "the live run's starting point")
        writer = start_writer(source_uri, db, seconds=5, rate=60, seed_=13)
        assert writer.wait(timeout=120) == 0
        wait_for(lambda: (checkpoint(target_uri, db, ":live") or {}).get("phase") == "replay",
                 "the replay phase")
        time.sleep(3)
        assert live.poll() is None, "a live run without --cutover-after-idle keeps following"
        ask = start_live(source_uri, target_uri, db, tmp_path, "--cutover")
        code, out, err = finish(ask)
        assert code == 0, err[-3000:]
        assert "to cut over" in out
        code, out, err = finish(live, timeout=120)
    finally:
        if live.poll() is None:
            live.kill()
    assert code == 0, err[-3000:]
    assert "hash: EQUAL" in report_row(out, "verification")
    assert "yes" in report_row(out, "cut over")
    assert raw_docs(target_uri, f"{db}_t") == raw_docs(source_uri, db)
    assert checkpoint(target_uri, db, ":cutover") is None  # the request was consumed


def live_migration(source_uri: str, target_uri: str, db: str, tmp_path: Path,
                   idle: float | None) -> Any:
    """A single-collection live run in this process (its metrics can be read as it goes)."""
    from dataworks.core.clients import Endpoint
    from dataworks.migrations.engine import MigrationOptions
    from dataworks.migrations.live import LiveMigration, LiveOptions
    from dataworks.migrations.strategy import DefaultStrategy

    options = MigrationOptions(source=Endpoint(source_uri, db, "orders"),
                               target=Endpoint(target_uri, f"{db}_t", "orders"),
                               strategy_cls=DefaultStrategy, batch_size=BATCH,
                               handle_signals=False, run_dir=tmp_path / "runs")
    return LiveMigration(options, LiveOptions(cutover_after_idle=idle, max_await_ms=100))


async def test_live_lag_is_unknown_until_a_page_and_grows_while_one_is_pending(
        live_pair, unique_db_name, tmp_path):
    """The lag on the progress line and in the metrics file: "?" until the replay's first
    page; and while the page after some changes is slow to come, a growing number, not the
    0 that the last (empty) page left."""
    import asyncio
    from urllib.parse import urlparse

    from dataworks.errors import Interrupted
    from dataworks.testing.proxy import FaultProxy

    source_uri, target_uri = live_pair
    db = unique_db_name
    seed(source_uri, db, 200)
    with FaultProxy(int(urlparse(source_uri).port or 27017)) as proxy:
        proxy.delay(0.3)  # every round trip to the source takes >= 0.6 s
        migration = live_migration(proxy.uri, target_uri, db, tmp_path, idle=None)
        run = asyncio.create_task(migration.run())
        try:
            while not (live := migration.metrics.live):  # the replay starts
                assert not run.done(), run.result()
                await asyncio.sleep(0.01)
            assert live["lag_s"] is None  # its stream's first page is >= 0.6 s away
            while live["lag_s"] is None:
                await asyncio.sleep(0.01)
            assert live["lag_s"] <= 2.0  # an empty page (the source is quiet): caught up
            proxy.delay(1.5)  # from now on a page takes >= 3 s
            await asyncio.sleep(4)  # the pages asked at the short delay are back
            with MongoClient(source_uri) as client:
                for i in range(20):
                    client[db]["orders"].update_one({"_id": i}, {"$inc": {"updates": 1}})
            seen = []
            deadline = time.monotonic() + 30
            while live["events_applied"] == 0 and time.monotonic() < deadline:
                seen.append(live["lag_s"])
                await asyncio.sleep(0.1)
            assert live["events_applied"] == 20
            assert max(seen) >= 1.0, seen  # the 20 changes waited: the target was behind
            migration.stop.set()
            with pytest.raises(Interrupted):
                await asyncio.wait_for(run, 60)
        finally:
            run.cancel()
    assert raw_docs(target_uri, f"{db}_t") == raw_docs(source_uri, db)


async def test_live_replay_asks_once_per_page_it_applies(live_pair, unique_db_name, tmp_path):
    """A page that came back with events is applied at once: no second getMore to fill the
    batch (on MongoDB that one waits up to max_await_ms when nothing new has come)."""
    from pymongo import AsyncMongoClient, monitoring

    from dataworks.core.clients import ReadOnlyChangeStream

    class GetMores(monitoring.CommandListener):
        count = 0

        def started(self, event: monitoring.CommandStartedEvent) -> None:
            self.count += event.command_name == "getMore"

        def succeeded(self, event: Any) -> None:
            pass

        def failed(self, event: Any) -> None:
            pass

    source_uri, target_uri = live_pair
    db = unique_db_name
    seed(source_uri, db, 10)
    migration = live_migration(source_uri, target_uri, db, tmp_path, idle=None)
    listener = GetMores()
    client: AsyncMongoClient[Any] = AsyncMongoClient(source_uri, event_listeners=[listener])
    try:
        coll = client[db]["orders"]
        # wrapped as the replay's own stream is (ReadOnlyCollection.change_stream)
        async with ReadOnlyChangeStream(await coll.watch(
                full_document="updateLookup", batch_size=BATCH,
                max_await_time_ms=100)) as stream:
            await coll.update_many({"_id": {"$lt": 5}}, {"$inc": {"updates": 1}})
            events = (await migration._next_batch(stream)).events
            assert [e["documentKey"]["_id"] for e in events] == [0, 1, 2, 3, 4]
            assert listener.count == 1
            events = (await migration._next_batch(stream)).events  # caught up: empty
            assert events == [] and listener.count == 2
    finally:
        await client.close()


def test_live_paused_while_caught_up_does_not_cut_over_on_an_old_empty_page(
        live_pair, unique_db_name, tmp_path):
    """The replay reads a page ahead. Frozen (SIGSTOP: a paused VM, a suspended shell) right
    after it had read an empty page, then woken after changes were made and the idle time
    has passed: that empty page is older than the changes and must not open the cutover
    gate; the run applies them and cuts over EQUAL."""
    source_uri, target_uri = live_pair
    db = unique_db_name
    seed(source_uri, db, 300)
    live = start_live(source_uri, target_uri, db, tmp_path, "--cutover-after-idle", "4")
    try:
        wait_for(lambda: (checkpoint(target_uri, db, ":live") or {}).get("phase") == "replay",
                 "the replay phase")
        time.sleep(1.0)  # following, caught up (mongo-java-server answers empty pages at once)
        live.send_signal(signal.SIGSTOP)
        with MongoClient(source_uri) as client:
            for i in range(20):
                client[db]["orders"].update_one({"_id": i}, {"$inc": {"updates": 1}})
        time.sleep(5)  # longer than --cutover-after-idle
        live.send_signal(signal.SIGCONT)
        code, out, err = finish(live, timeout=120)
    finally:
        if live.poll() is None:
            live.send_signal(signal.SIGCONT)
            live.kill()
    assert code == 0, err[-3000:]
    assert "hash: EQUAL" in report_row(out, "verification")
    assert raw_docs(target_uri, f"{db}_t") == raw_docs(source_uri, db)


async def test_live_replay_caught_up_waits_between_empty_pages(live_pair, unique_db_name,
                                                              tmp_path):
    """mongo-java-server ignores maxAwaitTimeMS and answers an empty getMore at once. Caught
    up, the replay still asks at most about once per max_await_ms (each getMore is a
    whole-oplog scan on that server, request units on Cosmos DB), and a change made while it
    waits still arrives within about max_await_ms."""
    import asyncio
    import dataclasses

    from pymongo import AsyncMongoClient, monitoring

    from dataworks.core.clients import ReadOnlyChangeStream

    class GetMores(monitoring.CommandListener):
        count = 0

        def started(self, event: monitoring.CommandStartedEvent) -> None:
            self.count += event.command_name == "getMore"

        def succeeded(self, event: Any) -> None:
            pass

        def failed(self, event: Any) -> None:
            pass

    source_uri, target_uri = live_pair
    db = unique_db_name
    seed(source_uri, db, 10)
    migration = live_migration(source_uri, target_uri, db, tmp_path, idle=None)
    migration.live = dataclasses.replace(migration.live, max_await_ms=500)
    listener = GetMores()
    client: AsyncMongoClient[Any] = AsyncMongoClient(source_uri, event_listeners=[listener])
    pages: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)
    try:
        coll = client[db]["orders"]
        async with await coll.watch(full_document="updateLookup", batch_size=BATCH,
                                    max_await_time_ms=500) as stream:
            reader = asyncio.create_task(migration._read_pages(stream, pages))
            try:
                empty = 0
                deadline = time.monotonic() + 3.0
                while (left := deadline - time.monotonic()) > 0:
                    with contextlib.suppress(TimeoutError):
                        page = await asyncio.wait_for(pages.get(), left)
                        assert not isinstance(page, Exception), page
                        assert page.events == []
                        empty += 1
                # 3 s caught up: about 6 pages at 0.5 s (hundreds without the back-off)
                assert 2 <= empty <= 8, empty
                assert listener.count <= 9, listener.count
                await coll.update_one({"_id": 3}, {"$inc": {"updates": 1}})
                changed = time.monotonic()
                while not (page := await asyncio.wait_for(pages.get(), 5)).events:
                    pass
                assert [e["documentKey"]["_id"] for e in page.events] == [3]
                assert time.monotonic() - changed < 1.5
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
    finally:
        await client.close()


async def test_live_replay_from_cosmos_keeps_to_the_ru_budget(live_pair, unique_db_name,
                                                              tmp_path):
    """The replay's change-stream pages and `_id` checks on a Cosmos DB source wait for the
    RU budget and are charged, as the copy's reads are: a backlog of about 1,000 RU at a
    budget of 50 RU/s takes many seconds instead of one, and the run's RU figures show it."""
    import asyncio
    import dataclasses

    from dataworks.errors import Interrupted

    budget = 50.0
    source_uri, target_uri = live_pair
    db = unique_db_name
    seed(source_uri, db, 300)
    with CosmosStandIn.in_front_of(source_uri, account="acct", key=COSMOS_TEST_KEY) as cosmos:
        migration = live_migration(cosmos.uri, target_uri, db, tmp_path, idle=None)
        migration.options = dataclasses.replace(migration.options, ru_per_second=budget)
        run = asyncio.create_task(migration.run())
        try:
            deadline = time.monotonic() + 120
            while not (live := migration.metrics.live):  # copied: replaying (Cosmos DB
                assert not run.done(), run.result()  # events carry no time: no lag figure)
                assert time.monotonic() < deadline, "the replay never started"
                await asyncio.sleep(0.05)
            await asyncio.sleep(2)  # caught up, and the bucket refilled: a full second
            with MongoClient(source_uri) as client:
                for n in range(10):  # 3,000 change events of ~300 bytes: ~1,000 RU
                    client[db]["orders"].update_many({}, {"$set": {"v": n}})
            written_at, spent_before = time.monotonic(), cosmos.counters.request_units
            while live["events_applied"] < 3000:
                assert not run.done(), run.result()
                assert time.monotonic() < written_at + 120, (live, cosmos.counters)
                await asyncio.sleep(0.05)
            took = time.monotonic() - written_at
            spent = cosmos.counters.request_units - spent_before
            migration.stop.set()
            with pytest.raises(Interrupted):
                await asyncio.wait_for(run, 60)
        finally:
            run.cancel()
    assert spent > 600, spent  # the backlog cost what the docstring says
    # At most the bucket's one second of credit, plus one page's overdraw, ahead of the rate
    assert took >= (spent - budget - 200) / budget, (took, spent)
    charged = migration.metrics.request_units_by
    assert charged.get("source:getMore", 0) >= 0.9 * spent, charged  # the replay's pages
    assert raw_docs(target_uri, f"{db}_t") == raw_docs(source_uri, db)
