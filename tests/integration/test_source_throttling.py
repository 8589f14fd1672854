"""Reading a throttled source: planning without `$sample` never holds every `_id`, and
throttling answers on reads are counted, honoured and adapted to."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient, monitoring

from dataworks.core.clients import ReadOnlyCollection
from dataworks.core.retry import RetryPolicy
from dataworks.migrations import partitioning
from dataworks.migrations.partitioning import PartitionPlanner
from dataworks.testing.cosmos import CosmosStandIn
from dataworks.testing.mongojava import MongoJavaServer
from tests.integration.test_metrics import cli, migrate_env
from tests.migration_helpers import load, raw_by_id


class Returned(monitoring.CommandListener):
    """Documents the server sent back to the client, by command: what planning held."""

    def __init__(self) -> None:
        self.documents: dict[str, int] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        cursor = event.reply.get("cursor") or {}
        batch = cursor.get("firstBatch") or cursor.get("nextBatch") or []
        self.documents[event.command_name] = self.documents.get(event.command_name, 0) \
            + len(batch)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_planning_without_sample_probes_instead_of_reading_every_id(source_uri,
                                                                          unique_db_name,
                                                                          test_server):
    """FerretDB has no $sample: the old fallback read every `_id` into a list."""
    if test_server.can("sample"):
        pytest.skip("this server has $sample; the fallback without it runs on FerretDB")
    start = datetime(2024, 1, 1, tzinfo=UTC)
    docs = [{"_id": ObjectId.from_datetime(start + timedelta(minutes=i)), "n": i}
            for i in range(3_000)]
    docs += [{"_id": i, "n": i} for i in range(1_000)] + [{"_id": f"s{i:05}"} for i in range(500)]
    load(source_uri, unique_db_name, "orders", docs)
    listener = Returned()
    client: AsyncMongoClient = AsyncMongoClient(source_uri, event_listeners=[listener])
    try:
        source = ReadOnlyCollection(client[unique_db_name]["orders"])
        partitions = await PartitionPlanner(source).plan_ranges(4)  # FerretDB: no $sample
        returned = sum(listener.documents.values())
        # two probes per type group and one for "other types"; the old fallback read all
        # 4,500 _ids into a list
        assert returned <= 10, listener.documents
        groups = [p.group for p in partitions]
        assert groups.count("objectId") >= 2 and groups.count("number") >= 2, partitions
        assert groups.count("string") == 1 and len(partitions) <= 6
        counts = [await source.count_documents(p.query()) for p in partitions]
        assert sum(counts) == len(docs) and all(counts), counts  # every document, once
    finally:
        await client.close()


# -- on the Cosmos DB stand-in's real sockets, mongo-java-server behind it ------------------
# (mongo-java-server answers `_id` range queries, so the source is read by parallel ranges as
# on Cosmos DB; FerretDB would be read in natural order with one cursor)

KB = "k" * 1000


@pytest.fixture(scope="module")
def java_uri(tmp_path_factory):
    server = MongoJavaServer(tmp_path_factory.mktemp("mongojava-throttle")).start()
    yield server.uri
    server.stop()


def run_migrate(source: str, target_uri: str, src_db: str, dst_db: str, tmp_path: Path,
                *extra: str, timeout: int = 600) -> tuple[subprocess.CompletedProcess[str], dict]:
    metrics_file = tmp_path / "metrics.json"
    result = cli(["migrate", "--checkpoint-store", f"file:{tmp_path / 'ckpt'}",
                  "--metrics-file", str(metrics_file), *extra],
                 migrate_env(source, target_uri, src_db, dst_db), tmp_path, timeout=timeout)
    report = (json.loads(metrics_file.read_text())["summary"]["report"]
              if metrics_file.exists() else {})
    return result, report


def test_throttled_reads_are_counted_slowed_down_and_the_copy_is_exact(java_uri, target_uri,
                                                                       unique_db_name, tmp_path):
    """16500 with RetryAfterMs on find/getMore: every answer counted (report, as the stand-in
    served them), reads slowed down (fewer cursors, smaller batches), nothing lost."""
    load(java_uri, unique_db_name, "orders", [{"_id": i, "pad": KB} for i in range(6_000)])
    with CosmosStandIn.in_front_of(java_uri, ru_per_s=1_500) as standin:
        result, report = run_migrate(standin.portal_uri(), target_uri, unique_db_name,
                                     unique_db_name, tmp_path, "--parallel-cursors", "4",
                                     "--batch-size", "500", "--workers", "2")
        counters = standin.counters
    assert result.returncode == 0, result.stderr[-3000:]
    assert raw_by_id(target_uri, unique_db_name, "orders") == \
        raw_by_id(java_uri, unique_db_name, "orders")
    assert counters.throttled > 0, counters
    assert report["source_throttled"] == report["throttled"] == counters.throttled
    limits = report["source_read_limits"]
    assert limits["lowest_cursors"] < 4 and limits["lowest_batch_size"] < 500, limits
    assert "throttled" in result.stdout and f"source reads {counters.throttled:,}" in result.stdout


def test_a_throttled_sample_is_retried_then_planning_probes(java_uri, unique_db_name,
                                                             monkeypatch):
    """$sample through a stand-in with no budget: retried with backoff (each answer counted)
    for the sampling budget, then the plan comes from a few `_id` probes (themselves retried
    until the budget comes back), never from reading every `_id`."""
    load(java_uri, unique_db_name, "orders", [{"_id": i} for i in range(2_000)])
    monkeypatch.setattr(partitioning, "SAMPLE_RETRY_S", 1.0)
    with CosmosStandIn.in_front_of(java_uri) as standin:
        async def plan() -> tuple[list, list, int]:
            listener = Returned()
            client: AsyncMongoClient = AsyncMongoClient(standin.uri, event_listeners=[listener])
            retried: list[str] = []
            try:
                await client.admin.command("ping")
                source = ReadOnlyCollection(client[unique_db_name]["orders"])
                planner = PartitionPlanner(
                    source, policy=RetryPolicy(max_seconds=30.0, max_delay_s=0.2),
                    on_retry=lambda verdict, *_: retried.append(verdict.kind.value))
                standin.set_budget(0)  # every metered request now gets 16500 ...
                threading.Timer(3.0, standin.set_budget, args=(None,)).start()  # ... for 3 s
                partitions = await planner.plan_ranges(4)
            finally:
                await client.close()
            return partitions, retried, sum(listener.documents.values())

        partitions, retried, returned = asyncio.run(plan())
        counters = standin.counters
    assert counters.throttled_by_command.get("aggregate", 0) >= 2, counters
    assert set(retried) == {"throttled"} and len(retried) == counters.throttled, counters
    assert returned <= 10  # probes: a handful of _ids, not 2,000
    assert [p.group for p in partitions].count("number") >= 2, partitions


def test_a_cursor_lost_mid_read_resumes_after_the_last_id(java_uri, target_uri, unique_db_name,
                                                          tmp_path):
    """CursorNotFound (43) on getMore, as Cosmos DB answers for a timed-out cursor: each
    partition reopens after its last `_id`; the copy is exact, no document twice."""
    load(java_uri, unique_db_name, "orders", [{"_id": i, "pad": KB} for i in range(4_000)])
    with CosmosStandIn.in_front_of(java_uri) as standin:
        standin.lose_cursors(getmores=5)  # the next five getMores: cursor not found
        result, report = run_migrate(standin.portal_uri(), target_uri, unique_db_name,
                                     unique_db_name, tmp_path, "--parallel-cursors", "2",
                                     "--batch-size", "200")
        counters = standin.counters
    assert result.returncode == 0, result.stderr[-3000:]
    assert counters.cursors_lost == 5
    assert report["retries"] >= 5 and report["read"] == 4_000 and report["written"] == 4_000
    assert report["already_present"] == 0
    assert raw_by_id(target_uri, unique_db_name, "orders") == \
        raw_by_id(java_uri, unique_db_name, "orders")


# -- the RU budget --------------------------------------------------------------------------


def test_ru_budget_caps_the_source_and_follows_dataworks_throttle(java_uri, unique_db_name,
                                                                  tmp_path):
    """--ru-per-second 400 on a metered source: the stand-in bills about 400 RU/s; then
    `dataworks throttle RUN_ID --ru-per-second 4000` while it runs lifts the rate within
    seconds. (Target: another database on the same fast server, so writes never bound it.)"""
    # 12,000 RU: 30 s at 400 RU/s, so a slow start of `dataworks throttle` (seconds on a
    # busy machine) still leaves plenty to read after the change
    load(java_uri, unique_db_name, "orders", [{"_id": i, "pad": KB} for i in range(12_000)])
    store = tmp_path / "ckpt.json"
    with CosmosStandIn.in_front_of(java_uri) as standin:
        env = {**os.environ, **migrate_env(standin.portal_uri(), java_uri, unique_db_name,
                                           unique_db_name + "_t")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "dataworks", "migrate", "--source-kind", "cosmos",
             "--ru-per-second", "400", "--batch-size", "100", "--verify", "none",
             "--checkpoint-store", f"file:{store}"],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started, series, changed_at, reading_from = time.monotonic(), [], None, None
        changer = None
        while proc.poll() is None:
            now = time.monotonic() - started
            series.append((now, standin.counters.request_units))
            if reading_from is None and series[-1][1] > 50:  # start-up done, reading
                reading_from = now
            if changer is None and reading_from is not None and now >= reading_from + 4 \
                    and store.exists():
                run_id = json.loads(store.read_text())["run_id"]
                change_started = now  # the old budget holds at least until here
                changer = subprocess.Popen(  # polling goes on while it starts up
                    [sys.executable, "-m", "dataworks", "throttle", run_id, "--ru-per-second",
                     "4000", "--checkpoint-store", f"file:{store}"], cwd=tmp_path, env=env,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if changer is not None and changed_at is None and changer.poll() is not None:
                assert changer.returncode == 0, changer.communicate()[1]
                changed_at = now  # the new budget is stored from here on
            time.sleep(0.25)
        out, err = proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    assert changed_at is not None, "the run ended before the budget could be changed"
    assert "RU budget changed: 400 -> 4,000 RU/s" in err

    def rate(start: float, end: float) -> float:
        inside = [(t, ru) for t, ru in series if start <= t <= end]
        (t0, ru0), (t1, ru1) = inside[0], inside[-1]
        return (ru1 - ru0) / (t1 - t0)

    before = rate(reading_from + 1.0, change_started)  # the first second's tokens left out
    assert 0.5 * 400 <= before <= 1.15 * 400, before  # lower bound: a busy machine is slower
    # after the change: the rest was read far faster than 400 RU/s would have allowed
    at_change = next(ru for t, ru in series if t >= changed_at)
    final = series[-1][1]
    last_bill = next(t for t, ru in series if ru >= final)
    left = final - at_change
    assert left > 800, "too little left to read after the change to measure it"
    assert last_bill - changed_at < 0.5 * left / 400, (before, left, last_bill - changed_at)
    assert raw_by_id(java_uri, unique_db_name + "_t", "orders") == \
        raw_by_id(java_uri, unique_db_name, "orders")


# -- count verification on a Cosmos DB source --------------------------------------------------


def test_count_verification_on_cosmos_counts_each_partition_and_reports_its_ru(
        java_uri, target_uri, unique_db_name, tmp_path):
    """--verify count on a metered Cosmos source: one count per `_id` range, each bounded by
    maxTimeMS, each charged on its own connection; the RU appear in the verification."""
    load(java_uri, unique_db_name, "orders", [{"_id": i, "pad": KB} for i in range(3_000)])
    with CosmosStandIn.in_front_of(java_uri) as standin:
        result, report = run_migrate(standin.portal_uri(), target_uri, unique_db_name,
                                     unique_db_name, tmp_path, "--source-kind", "cosmos",
                                     "--parallel-cursors", "3", "--verify", "count")
        counters = standin.counters
    assert result.returncode == 0, result.stderr[-3000:]
    verification = report["verification"]
    assert verification["equal"] and verification["source_count"] == 3_000
    assert verification["partitions"] >= 2, verification
    assert verification["request_units"] and verification["request_units"] > 0
    assert counters.charged_by_command.get("aggregate", 0) >= verification["request_units"]
    assert "RU)" in result.stdout and "partitions" in result.stdout


# -- the RU budget of a database run ----------------------------------------------------------


def _rate(series: list[tuple[float, float]], start: float, end: float) -> float:
    inside = [(t, ru) for t, ru in series if start <= t <= end]
    (t0, ru0), (t1, ru1) = inside[0], inside[-1]
    return (ru1 - ru0) / (t1 - t0)


def test_a_database_run_shares_one_ru_budget_and_follows_dataworks_throttle(
        java_uri, unique_db_name, tmp_path):
    """The whole-database form, two collections copied at once from the stand-in (detected
    by its replies, no --source-kind): `--ru-per-second 300` is the budget of the run, not of
    each collection (the account bills about 300 RU/s, not 600), and `dataworks throttle`
    with the database run's id lifts it for every collection within 10 s."""
    for name in ("alpha", "beta"):  # 9,000 RU each at ~1 RU per KB: 60 s at 300 RU/s
        load(java_uri, unique_db_name, name, [{"_id": i, "pad": KB} for i in range(9_000)])
    store = tmp_path / "ckpt"
    target_db = unique_db_name + "_t"
    with CosmosStandIn.in_front_of(java_uri) as standin:
        env = {**os.environ, "FRAMEWORK_PROFILE": "dev"}
        common = ["--checkpoint-store", f"file:{store}"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "dataworks", "migrate", "--source-uri", standin.portal_uri(),
             "--source-db", unique_db_name, "--target-uri", java_uri, "--target-db", target_db,
             "--parallel-collections", "2", "--ru-per-second", "300", "--batch-size", "50",
             "--verify", "none", *common],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started, series, reading_from = time.monotonic(), [], None
        changer = change_started = changed_at = None
        getmores: list[tuple[float, dict]] = []
        while proc.poll() is None:
            now = time.monotonic() - started
            series.append((now, standin.counters.request_units))
            if reading_from is None and series[-1][1] > 50:
                reading_from = now
            runs = [json.loads(p.read_text()) for p in store.glob("*.json")] \
                if store.exists() else []
            db_run = next((r["run_id"] for r in runs if r.get("kind") == "database"), None)
            if changer is None and reading_from is not None and now >= reading_from + 10 \
                    and db_run is not None:
                change_started = now
                changer = subprocess.Popen(
                    [sys.executable, "-m", "dataworks", "throttle", db_run, "--ru-per-second",
                     "3000", *common], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, text=True)
            if changer is not None and changed_at is None and changer.poll() is not None:
                out, err = changer.communicate()
                assert changer.returncode == 0, err
                assert "RU budget set to 3,000 RU/s" in out
                changed_at = now
            time.sleep(0.25)
        out, err = proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    assert changed_at is not None, "the run ended before the budget could be changed"
    # one budget for the run: the change is logged once, not once per collection
    assert err.count("RU budget changed: 300 -> 3,000 RU/s") == 1, err[-3000:]
    # Two collections, one 300 RU/s budget (one per collection would bill about 600). The
    # bucket is charged after each request, so it can run into debt by the batches in flight
    # (4 cursors x ~50 RU) plus the second's worth it starts with: over 8 s, at most ~60 RU/s
    # above the budget.
    shared = _rate(series, reading_from + 2.0, change_started)
    assert 0.5 * 300 <= shared <= 1.3 * 300, shared
    # within 10 s of the command returning, the account bills far above the old budget
    # (the first whole second after it, over 3x the old rate)
    lifted = next((t for t, _ in series if t >= changed_at + 1.0
                   and _rate(series, t - 1.0, t) > 3 * 300), None)
    print(f"shared {shared:.0f} RU/s; lifted {lifted and lifted - changed_at:.1f} s after "
          f"the change was stored ({changed_at - change_started:.1f} s to store it)")
    assert lifted is not None and lifted - changed_at <= 10.0, (lifted, changed_at, shared)
    for name in ("alpha", "beta"):
        assert raw_by_id(java_uri, target_db, name) == raw_by_id(java_uri, unique_db_name, name)
