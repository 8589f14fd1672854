"""Fault injection against the real server: dropped connections (a TCP proxy that cuts them),
Cosmos DB throttling and fatal errors (injected at the client, since FerretDB never throttles).
Every run must end byte-for-byte equal to its source, or stop cleanly and resume."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from bson import json_util
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, OperationFailure

from dataworks import commands
from dataworks.config import load_settings
from dataworks.errors import SettingsError
from dataworks.generators.run import generate
from dataworks.monitoring.metrics import RunMetrics
from dataworks.testing.proxy import FaultProxy
from tests.migration_helpers import assert_identical, load, mixed_documents, raw_by_id

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = str(ROOT / "user_defined/templates/service_order_template.json")
COSMOS_429 = (
    "Error=16500, RetryAfterMs=7, Details='Response status code does not indicate success: "
    "TooManyRequests (429); Substatus: 3200; Reason: (Message: {\"Errors\":[\"Request rate is "
    "large. More Request Units may be needed, so no changes were made. Please retry this "
    "request later. Learn more: http://aka.ms/cosmosdb-error-429\"]})'"
)


def port_of(uri: str) -> int:
    return int(urlparse(uri).port or 27017)


def migration_settings(source_uri, target_uri, src_db, dst_db, **extra):
    return load_settings(profile="dev", overrides={
        "mig_source_db_connection_string": source_uri, "mig_source_db_name": src_db,
        "mig_source_db_collection": "orders", "mig_target_db_connection_string": target_uri,
        "mig_target_db_name": dst_db, "mig_target_db_collection": "orders", **extra,
    })


async def wait_until(condition, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


# -- dropped connections -------------------------------------------------------------------


async def test_migration_under_repeated_connection_cuts_is_exact(source_uri, target_uri,
                                                                 unique_db_name, tmp_path):
    """Connections die mid-reply and mid-insert (byte budgets), all at once (cut_all), and the
    target stops accepting for a while. FerretDB is read in natural order, so each source cut
    reopens the cursor and passes over (and proves by digest) what was already queued. (No
    cuts on a timer: a reopened cursor re-reads from the start, which on a loaded machine can
    take longer than any short timer, and would test FerretDB, not us.)"""
    src = unique_db_name + "_src"
    docs = mixed_documents(8_000, seed=11)
    load(source_uri, src, "orders", docs)
    with FaultProxy(port_of(source_uri), seed=1) as src_proxy, \
            FaultProxy(port_of(target_uri), seed=2) as dst_proxy:
        src_proxy.cut_after_bytes(1_000_000, 3_000_000)  # mid-reply cuts
        dst_proxy.cut_after_bytes(300_000, 1_500_000)  # mid-insert cuts
        settings = migration_settings(src_proxy.uri, dst_proxy.uri, src, unique_db_name,
                                      mig_batch_size=500, max_insert_workers=4,
                                      checkpoint_interval=2_000)
        metrics = RunMetrics()
        run = asyncio.create_task(commands.migrate(settings, metrics=metrics, run_dir=tmp_path))
        for step, share in enumerate((0.2, 0.4, 0.6, 0.8)):
            await wait_until(lambda s=share: metrics.done >= s * len(docs) or run.done(), 240)
            if step == 2:
                dst_proxy.refuse_for(1.5)  # the target goes away for a moment
            else:
                src_proxy.cut_all()
                dst_proxy.cut_all()
        report = await asyncio.wait_for(run, 240)
        cuts = src_proxy.cuts + dst_proxy.cuts
    assert report.status == "completed"
    assert cuts >= 5, f"only {cuts} cuts: the test did not test much"
    assert src_proxy.cuts >= 2, "the source cursor should have been cut and reopened"
    assert metrics.retries > 0
    assert report.written + report.already_present == len(docs)
    assert assert_identical((source_uri, src, "orders"),
                            (target_uri, unique_db_name, "orders")) == len(docs)


async def test_generation_under_repeated_connection_cuts_is_exact(mongo_uri, unique_db_name):
    def settings(uri):
        return load_settings(profile="dev", overrides={
            "gen_db_connection_string": uri, "gen_db_name": unique_db_name,
            "checkpoint_interval": 2_000})

    clean = await generate(settings(mongo_uri).model_copy(update={"gen_db_collection": "clean"}),
                           TEMPLATE, total=5_000, seed=21, batch_size=300, workers=0)
    assert clean.written == 5_000
    with FaultProxy(port_of(mongo_uri), seed=3) as proxy:
        proxy.cut_after_bytes(200_000, 1_200_000)
        proxy.chaos(1.5)
        metrics = RunMetrics()
        faulty = await asyncio.wait_for(generate(
            settings(proxy.uri).model_copy(update={"gen_db_collection": "faulty"}), TEMPLATE,
            total=5_000, seed=21, batch_size=300, workers=0, write_workers=3,
            metrics=metrics), 240)
        cuts = proxy.cuts
    assert cuts >= 3 and metrics.retries > 0
    assert faulty.documents == 5_000
    expected = raw_by_id(mongo_uri, unique_db_name, "clean")
    assert raw_by_id(mongo_uri, unique_db_name, "faulty") == expected
    assert len(expected) == 5_000


# -- injected throttling, rejections and fatal errors ---------------------------------------


class InjectedServer:
    """Wraps `AsyncCollection.insert_many` for one namespace to answer like Cosmos DB:
    a partly applied batch whose other documents got 16500 with RetryAfterMs, a whole
    command refused with 429, validation failures for chosen documents, or Unauthorized."""

    def __init__(self, monkeypatch, namespace: str, metrics: RunMetrics, *, storm_calls=0,
                 reject=lambda doc: False, unauthorized_after: int | None = None,
                 call_seconds: float = 0.005) -> None:
        self.namespace = namespace
        self.call_seconds = call_seconds
        self.metrics = metrics
        self.storm_calls = storm_calls
        self.reject = reject
        self.unauthorized_after = unauthorized_after
        self.calls = 0
        self.concurrency: list[int] = []
        self.rng = random.Random(5)
        self.real = AsyncCollection.insert_many
        server = self

        async def insert_many(coll, documents, *args, **kwargs):
            if coll.full_name != server.namespace:
                return await server.real(coll, documents, *args, **kwargs)
            return await server.insert_many(coll, list(documents), **kwargs)

        monkeypatch.setattr(AsyncCollection, "insert_many", insert_many)

    async def insert_many(self, coll, docs, **kwargs):
        self.calls += 1
        self.concurrency.append(self.metrics.concurrency)
        if self.unauthorized_after is not None and self.calls > self.unauthorized_after:
            raise OperationFailure("not authorized on db to execute command { insert: ... }",
                                   code=13, details={"ok": 0, "code": 13,
                                                     "codeName": "Unauthorized"})
        storm = self.calls <= self.storm_calls
        await asyncio.sleep(self.call_seconds)  # a little server time, so requests overlap
        if storm and self.calls % 4 == 0:  # the whole command refused (HTTP 429)
            raise OperationFailure("TooManyRequests", code=429,
                                   details={"ok": 0, "code": 429, "errmsg": "TooManyRequests"})
        errors = []
        for i, doc in enumerate(docs):
            if self.reject(doc):
                errors.append({"index": i, "code": 121, "errmsg": "Document failed validation"})
            elif storm and self.rng.random() < 0.5:
                errors.append({"index": i, "code": 16500, "errmsg": COSMOS_429})
        failed = {e["index"] for e in errors}
        keep = [i for i in range(len(docs)) if i not in failed]
        inserted = len(keep)
        if keep:
            try:
                await self.real(coll, [docs[i] for i in keep], ordered=False)
            except BulkWriteError as exc:  # e.g. duplicates: map indices back to the batch
                inserted = exc.details["nInserted"]
                for error in exc.details["writeErrors"]:
                    errors.append({**error, "index": keep[error["index"]]})
        if errors:
            raise BulkWriteError({"writeErrors": sorted(errors, key=lambda e: e["index"]),
                                  "writeConcernErrors": [], "nInserted": inserted,
                                  "nUpserted": 0, "nMatched": 0, "nModified": 0,
                                  "nRemoved": 0, "upserted": []})


async def test_throttling_is_retried_and_concurrency_drops_then_recovers(
        monkeypatch, source_uri, target_uri, unique_db_name, tmp_path):
    src = unique_db_name + "_src"
    docs = mixed_documents(8_000, seed=4)
    load(source_uri, src, "orders", docs)
    metrics = RunMetrics()
    # 30 ms per insert: climbing back from 1 to 4 takes 3 quiet periods of 0.2 s, which the
    # ~56 inserts after the storm must outlast even on a fast server.
    server = InjectedServer(monkeypatch, f"{unique_db_name}.orders", metrics, storm_calls=24,
                            call_seconds=0.03)
    settings = migration_settings(source_uri, target_uri, src, unique_db_name,
                                  mig_batch_size=100, max_insert_workers=4,
                                  throttle_recovery_seconds=0.2)
    report = await commands.migrate(settings, metrics=metrics, run_dir=tmp_path)
    assert report.status == "completed"
    assert report.throttled > 0 and report.retries >= report.throttled
    seen = server.concurrency
    assert seen[0] == 4
    lowest = min(seen)
    assert lowest == 1, f"concurrency never dropped to 1: {seen[:60]}"
    after_low = seen[len(seen) - 1 - seen[::-1].index(lowest):]
    assert max(after_low) == 4, f"concurrency did not recover: {after_low}"
    assert metrics.concurrency == 4
    assert report.written + report.already_present == len(docs)
    assert assert_identical((source_uri, src, "orders"),
                            (target_uri, unique_db_name, "orders")) == len(docs)


async def test_generation_rides_through_throttling(monkeypatch, mongo_uri, unique_db_name):
    metrics = RunMetrics()
    server = InjectedServer(monkeypatch, f"{unique_db_name}.gen", metrics, storm_calls=25)
    settings = load_settings(profile="dev", overrides={
        "gen_db_connection_string": mongo_uri, "gen_db_name": unique_db_name,
        "gen_db_collection": "gen", "throttle_recovery_seconds": 0.2})
    report = await generate(settings, TEMPLATE, total=8_000, seed=3, batch_size=100,
                            workers=0, write_workers=4, metrics=metrics)
    assert report.documents == 8_000
    assert metrics.throttled > 0 and metrics.retries > 0
    assert min(server.concurrency) < 4
    assert len(raw_by_id(mongo_uri, unique_db_name, "gen")) == 8_000


async def test_rejected_documents_are_dead_lettered_and_counted(
        monkeypatch, source_uri, target_uri, unique_db_name, tmp_path):
    src = unique_db_name + "_src"
    load(source_uri, src, "orders", [{"_id": i, "v": i} for i in range(3_000)])
    metrics = RunMetrics()
    InjectedServer(monkeypatch, f"{unique_db_name}.orders", metrics,
                   reject=lambda doc: doc["v"] % 500 == 7)
    settings = migration_settings(source_uri, target_uri, src, unique_db_name,
                                  mig_batch_size=250)
    report = await commands.migrate(settings, metrics=metrics, run_dir=tmp_path)
    assert report.status == "completed"
    assert report.rejected == 6 and report.written == 2_994
    lines = Path(report.dead_letter_file).read_text().splitlines()
    records = [json_util.loads(line) for line in lines]
    assert sorted(r["_id"] for r in records) == [7, 507, 1007, 1507, 2007, 2507]
    assert {r["code"] for r in records} == {121}
    assert all("validation" in r["reason"] for r in records)
    target = raw_by_id(target_uri, unique_db_name, "orders")
    assert len(target) == 2_994


async def test_unauthorized_stops_with_checkpoint_and_next_run_resumes(
        monkeypatch, source_uri, target_uri, unique_db_name, tmp_path):
    src = unique_db_name + "_src"
    docs = mixed_documents(4_000, seed=9)
    load(source_uri, src, "orders", docs)
    store = tmp_path / "checkpoint.json"
    settings = migration_settings(source_uri, target_uri, src, unique_db_name,
                                  mig_batch_size=250, max_insert_workers=2,
                                  parallel_cursors=1)
    with monkeypatch.context() as patch:
        InjectedServer(patch, f"{unique_db_name}.orders", RunMetrics(), unauthorized_after=8)
        with pytest.raises(SettingsError, match="refused the operation.*not authorized"):
            await commands.migrate(settings, checkpoint_store=f"file:{store}", run_dir=tmp_path)
    saved = json_util.loads(store.read_text())
    assert saved["finished"] is False
    assert 0 < saved["done_count"] <= 8 * 250
    report = await commands.migrate(settings, checkpoint_store=f"file:{store}",
                                    run_dir=tmp_path)
    assert report.status == "completed"
    assert report.resumed_from == saved["done_count"]
    assert assert_identical((source_uri, src, "orders"),
                            (target_uri, unique_db_name, "orders")) == len(docs)


async def test_write_concern_errors_resend_the_batch_and_nothing_is_lost(
        monkeypatch, source_uri, target_uri, unique_db_name, tmp_path):
    """The server applies a batch but reports a writeConcernError (as a replica set does
    when w:majority times out): the writer must not count it as done; the re-send finds
    the documents present, and every document ends on the target once."""
    src = unique_db_name + "_src"
    docs = mixed_documents(3_000, seed=8)
    load(source_uri, src, "orders", docs)
    real = AsyncCollection.insert_many
    calls = {"n": 0}
    namespace = f"{unique_db_name}.orders"

    async def insert_many(coll, documents, *args, **kwargs):
        result = await real(coll, documents, *args, **kwargs)
        if coll.full_name == namespace:
            calls["n"] += 1
            if calls["n"] % 3 == 1:  # every third batch: applied, but not proven durable
                raise BulkWriteError({"writeErrors": [], "nInserted": len(list(documents)),
                                      "writeConcernErrors": [{
                                          "code": 64, "codeName": "WriteConcernFailed",
                                          "errmsg": "waiting for replication timed out"}]})
        return result

    monkeypatch.setattr(AsyncCollection, "insert_many", insert_many)
    metrics = RunMetrics()
    settings = migration_settings(source_uri, target_uri, src, unique_db_name,
                                  mig_batch_size=250)
    report = await commands.migrate(settings, metrics=metrics, run_dir=tmp_path)
    assert report.status == "completed"
    assert report.retries > 0
    assert report.already_present > 0  # the re-sent documents were found already there
    assert report.written + report.already_present == len(docs)
    assert assert_identical((source_uri, src, "orders"),
                            (target_uri, unique_db_name, "orders")) == len(docs)


async def test_a_network_error_while_planning_or_counting_is_retried(
        monkeypatch, source_uri, target_uri, unique_db_name, tmp_path):
    """Start-up reads (the planner's explain, the source count) fail once each with a
    network error; the run retries them and ends exact instead of failing."""
    from pymongo.errors import AutoReconnect

    from dataworks.core.clients import ReadOnlyCollection

    src = unique_db_name + "_src"
    docs = mixed_documents(2_000, seed=9)
    load(source_uri, src, "orders", docs)
    failures = {"explain_find": 1, "fast_count": 1}
    for name in failures:
        real = getattr(ReadOnlyCollection, name)

        async def flaky(self, *args, _real=real, _name=name, **kwargs):
            if failures[_name] > 0:
                failures[_name] -= 1
                raise AutoReconnect(f"connection closed during {_name}")
            return await _real(self, *args, **kwargs)

        monkeypatch.setattr(ReadOnlyCollection, name, flaky)
    metrics = RunMetrics()
    report = await commands.migrate(
        migration_settings(source_uri, target_uri, src, unique_db_name, mig_batch_size=250),
        metrics=metrics, run_dir=tmp_path)
    assert report.status == "completed"
    assert failures == {"explain_find": 0, "fast_count": 0}  # both failures happened
    assert assert_identical((source_uri, src, "orders"),
                            (target_uri, unique_db_name, "orders")) == len(docs)
