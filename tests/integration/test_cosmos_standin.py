"""The Cosmos DB stand-in (`dataworks.testing.cosmos`) on its real sockets: throttling on
reads and writes in every message form, partly applied inserts, server-side retry, request
statistics reaching a real migration's report, the portal connection string, retryable
writes and the restricted change stream. Every fault is proven by the stand-in's counters,
not only by the error the client saw."""

from __future__ import annotations

import json
import re
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote_plus

import bson
import pytest
from pymongo import MongoClient
from pymongo.errors import BulkWriteError, ExecutionTimeout, OperationFailure, WriteError

from dataworks.testing.cosmos import CosmosStandIn
from dataworks.testing.plugin import COSMOS_TEST_KEY
from dataworks.testing.wire import MORE_TO_COME, OP_MSG, Frame, OpMsg
from tests.integration.test_metrics import cli, migrate_env
from tests.migration_helpers import load, mixed_documents, raw_by_id

RETRY_AFTER = re.compile(r"RetryAfterMs=(\d+)")
CHANGE_PIPELINE = [
    {"$match": {"operationType": {"$in": ["insert", "update", "replace"]}}},
    {"$project": {"_id": 1, "fullDocument": 1, "ns": 1, "documentKey": 1}},
]
KB_DOC = "x" * 1000  # documents of ~1 KB: a 100-document page is ~100 RU


def portal_client(standin: CosmosStandIn) -> MongoClient:
    """One connection, so getLastRequestStatistics sees this client's own requests."""
    return MongoClient(standin.portal_uri(), maxPoolSize=1, serverSelectionTimeoutMS=10_000)


@pytest.fixture
def kb_docs(source_uri, unique_db_name):
    """300 documents of ~1 KB in `<db>.docs` on the server behind the stand-in."""
    load(source_uri, unique_db_name, "docs", [{"_id": i, "pad": KB_DOC} for i in range(300)])
    yield unique_db_name
    with MongoClient(source_uri) as client:
        client.drop_database(unique_db_name)


def ids_on_server(uri: str, db: str, coll: str) -> list:
    with MongoClient(uri) as client:
        return sorted(doc["_id"] for doc in client[db][coll].find({}, {"_id": 1}))


# -- 16500 on reads and writes ------------------------------------------------------------


@pytest.mark.parametrize("variant", ["retry_after", "request_rate_is_large", "insert_error"])
def test_reads_over_budget_get_16500_on_find_getmore_aggregate_count(cosmos_source, kb_docs,
                                                                      variant):
    cosmos_source.set_throttle_message(variant)
    cosmos_source.set_budget(20)  # RU/s; one 100-document page (~100 RU) overdraws it
    with portal_client(cosmos_source) as client:
        docs = client[kb_docs].docs
        cursor = docs.find().batch_size(100)
        assert len([next(cursor) for _ in range(100)]) == 100  # the find itself was admitted
        failures = []
        with pytest.raises(OperationFailure) as getmore:
            next(cursor)  # needs a getMore: the bucket is ~80 RU below zero
        failures.append(getmore.value)
        for read in (lambda: next(docs.find().batch_size(10)),
                     lambda: docs.count_documents({}),  # aggregate
                     docs.estimated_document_count):  # count
            with pytest.raises(OperationFailure) as failure:
                read()
            failures.append(failure.value)
    assert [f.code for f in failures] == [16500] * 4
    for failure in failures:
        retry_after = RETRY_AFTER.search(str(failure))
        if variant == "retry_after":
            assert retry_after and 1 <= int(retry_after.group(1)) <= 5000, str(failure)
            assert "no changes were made" in str(failure)
        else:
            assert retry_after is None, str(failure)
    counters = cosmos_source.counters
    assert counters.throttled == 4
    assert counters.throttled_by_command == {"getMore": 1, "find": 1, "aggregate": 1,
                                             "count": 1}


@pytest.mark.parametrize("variant", ["retry_after", "request_rate_is_large", "insert_error"])
def test_writes_over_budget_get_16500_and_apply_nothing(cosmos_source, source_uri,
                                                        unique_db_name, variant):
    cosmos_source.set_throttle_message(variant)
    cosmos_source.set_budget(0)  # no throughput left at all
    with portal_client(cosmos_source) as client:
        with pytest.raises(WriteError) as one:
            client[unique_db_name].w.insert_one({"_id": "one"})
        with pytest.raises(BulkWriteError) as many:
            client[unique_db_name].w.insert_many([{"_id": i} for i in range(5)], ordered=False)
        with pytest.raises(OperationFailure) as update:
            client[unique_db_name].w.update_one({"_id": 1}, {"$set": {"a": 1}}, upsert=True)
    assert one.value.code == 16500 and update.value.code == 16500
    errors = many.value.details["writeErrors"]
    assert [e["index"] for e in errors] == [0, 1, 2, 3, 4]
    assert {e["code"] for e in errors} == {16500}
    assert many.value.details["nInserted"] == 0
    for message in (str(one.value), errors[0]["errmsg"], str(update.value)):
        assert (RETRY_AFTER.search(message) is not None) == (variant == "retry_after"), message
    assert ids_on_server(source_uri, unique_db_name, "w") == []
    assert cosmos_source.counters.throttled == 3
    assert cosmos_source.counters.throttled_by_command == {"insert": 2, "update": 1}
    assert cosmos_source.counters.partial_inserts == 0


def test_unacknowledged_insert_over_budget_gets_no_answer(source_uri, unique_db_name):
    """An OP_MSG with moreToCome (w=0) asks for no reply: a throttled one is dropped
    silently, and the connection stays in step: the next reply answers the next request."""
    with CosmosStandIn.in_front_of(source_uri, ru_per_s=0) as standin, \
            socket.create_connection(("127.0.0.1", standin.port), timeout=10) as sock:
        insert = OpMsg.of({"insert": "w", "$db": unique_db_name}, flags=MORE_TO_COME)
        insert.sequences["documents"] = [bson.encode({"_id": i}) for i in range(5)]
        ping = OpMsg.of({"ping": 1, "$db": "admin"})
        sock.sendall(Frame(1, 0, OP_MSG, insert.encode()).encode()
                     + Frame(2, 0, OP_MSG, ping.encode()).encode())
        header = sock.recv(16, socket.MSG_WAITALL)
        length, _, response_to, _ = struct.unpack("<iiii", header)
        body = OpMsg.parse(sock.recv(length - 16, socket.MSG_WAITALL)).body
        counters = standin.counters
    assert response_to == 2 and body["ok"] == 1  # the ping's own answer comes first
    assert counters.throttled == 1
    assert ids_on_server(source_uri, unique_db_name, "w") == []


@pytest.mark.parametrize("ordered", [False, True])
def test_bulk_insert_over_budget_is_partly_applied(cosmos_source, source_uri, unique_db_name,
                                                   ordered):
    """50 RU/s and 5.5 RU per (<1 KB) document: the first 10 documents start while budget
    remains and are written; the other 30 come back as 16500 write errors whose message
    says that no changes were made."""
    cosmos_source.set_budget(50)
    with portal_client(cosmos_source) as client:
        with pytest.raises(BulkWriteError) as failure:
            client[unique_db_name].w.insert_many([{"_id": i} for i in range(40)],
                                                 ordered=ordered)
        stats = client[unique_db_name].command("getLastRequestStatistics")
    details = failure.value.details
    assert details["nInserted"] == 10
    indexes = [e["index"] for e in details["writeErrors"]]
    assert indexes == ([10] if ordered else list(range(10, 40)))
    assert {e["code"] for e in details["writeErrors"]} == {16500}
    assert all("no changes were made" in e["errmsg"] for e in details["writeErrors"])
    assert ids_on_server(source_uri, unique_db_name, "w") == list(range(10))
    assert stats["CommandName"] == "insert" and stats["RequestCharge"] == 55.0
    counters = cosmos_source.counters
    assert counters.partial_inserts == 1 and counters.documents_refused == 30
    assert counters.throttled == 0


# -- server-side retry ---------------------------------------------------------------------


def test_server_side_retry_delays_then_answers_error_50(cosmos_source, kb_docs):
    cosmos_source.set_server_side_retry(True, limit_s=0.5)
    cosmos_source.set_budget(10)  # a 100-document page leaves the bucket ~90 RU (9 s) short
    with portal_client(cosmos_source) as client:
        docs = client[kb_docs].docs
        assert len(docs.find_one({"_id": 0})["pad"]) == 1000
        assert len(list(docs.find().limit(100).batch_size(100))) == 100  # one reply, ~100 RU
        started = time.monotonic()
        with pytest.raises(ExecutionTimeout) as failure:
            docs.find_one({"_id": 1})
        waited = time.monotonic() - started
    assert failure.value.code == 50
    assert "Retries due to rate limiting: True" in str(failure.value)
    assert waited >= 0.5
    counters = cosmos_source.counters
    assert counters.timeouts == 1 and counters.server_side_retry_waits == 1
    assert counters.throttled == 0  # the client never saw a 16500


def test_server_side_retry_holds_a_request_until_budget_returns(cosmos_source, source_uri,
                                                                kb_docs):
    cosmos_source.set_server_side_retry(True, limit_s=30)
    cosmos_source.set_budget(200)
    with portal_client(cosmos_source) as client:
        docs = client[kb_docs].docs
        assert len(list(docs.find().limit(300).batch_size(300))) == 300  # ~300 RU: 100 short
        started = time.monotonic()
        assert docs.find_one({"_id": 7})["_id"] == 7
        waited = time.monotonic() - started
        # 550 RU, more than the whole budget: held until admitted, then applied whole
        result = docs.insert_many([{"_id": i} for i in range(1000, 1100)], ordered=False)
    assert len(result.inserted_ids) == 100
    assert ids_on_server(source_uri, kb_docs, "docs")[-100:] == list(range(1000, 1100))
    assert waited >= 0.3  # ~100 RU at 200 RU/s
    counters = cosmos_source.counters
    assert counters.timeouts == 0 and counters.server_side_retry_waits >= 1
    assert counters.throttled == 0 and counters.partial_inserts == 0


# -- request statistics and the portal connection string ------------------------------------


def test_request_statistics_are_per_connection(cosmos_source, kb_docs):
    with portal_client(cosmos_source) as a, portal_client(cosmos_source) as b:
        list(a[kb_docs].docs.find({"_id": {"$lt": 50}}).batch_size(50))
        b[kb_docs].docs.insert_one({"_id": "b", "pad": "y"})
        stats_a = a[kb_docs].command("getLastRequestStatistics")
        stats_b = b[kb_docs].command("getLastRequestStatistics")
        again_a = a[kb_docs].command("getLastRequestStatistics")
    assert stats_a["_t"] == "GetRequestStatisticsResponse" and stats_a["ok"] == 1
    assert stats_a["CommandName"] in ("find", "getMore") and stats_a["RequestCharge"] >= 1.0
    assert stats_b["CommandName"] == "insert" and stats_b["RequestCharge"] == 5.5
    assert again_a == {**stats_a, "RequestDurationInMilliSeconds":
                       again_a["RequestDurationInMilliSeconds"]}  # not itself a request
    assert cosmos_source.counters.statistics_answered == 3


def test_portal_connection_string_discovers_replica_set_globaldb(cosmos_source):
    with MongoClient(cosmos_source.portal_uri("acct"), serverSelectionTimeoutMS=10_000,
                     compressors="zlib") as client:
        hello = client.admin.command("hello")
        client.admin.command("ping")
        assert client.topology_description.topology_type_name == "ReplicaSetWithPrimary"
        assert client.primary == ("127.0.0.1", cosmos_source.port)
        assert client.options.pool_options.metadata["application"]["name"] == "@acct@"
    assert hello["setName"] == "globaldb"
    assert hello["hosts"] == [cosmos_source.address] == [hello["me"]]
    assert "compression" not in hello  # compression refused: messages stay readable
    assert set(cosmos_source.counters.app_names) == {"@acct@"}  # every connection's hello


def test_login_with_the_account_key_is_required(cosmos_source, kb_docs):
    wrong = cosmos_source.portal_uri().replace(quote_plus(COSMOS_TEST_KEY), "bm90LXRoZS1rZXk=")
    anonymous = f"mongodb://{cosmos_source.address}/?replicaSet=globaldb&retrywrites=false"
    with MongoClient(wrong, serverSelectionTimeoutMS=10_000) as client:
        with pytest.raises(OperationFailure) as bad_key:
            client[kb_docs].docs.find_one()
    with MongoClient(anonymous, serverSelectionTimeoutMS=10_000) as client:
        with pytest.raises(OperationFailure) as no_login:
            client[kb_docs].docs.find_one()
    with portal_client(cosmos_source) as client:
        assert client[kb_docs].docs.find_one({"_id": 3})["_id"] == 3
    assert bad_key.value.code == 18 and no_login.value.code == 13
    assert cosmos_source.counters.failed_logins == 1


def test_retryable_writes_are_refused_like_cosmos(cosmos_source, source_uri, unique_db_name):
    with MongoClient(cosmos_source.uri, serverSelectionTimeoutMS=10_000) as client:
        with pytest.raises(OperationFailure) as failure:
            client[unique_db_name].w.insert_one({"_id": 1})  # retryWrites defaults to true
    assert 'specifying "retrywrites=false" in the connection string' in str(failure.value)
    assert cosmos_source.counters.retryable_writes_refused == 1
    assert ids_on_server(source_uri, unique_db_name, "w") == []
    with portal_client(cosmos_source) as client:  # the portal string says retrywrites=false
        client[unique_db_name].w.insert_one({"_id": 1})
    assert ids_on_server(source_uri, unique_db_name, "w") == [1]
    with MongoClient(source_uri) as client:
        client.drop_database(unique_db_name)


def test_migrate_from_portal_connection_string_sums_request_units_into_the_report(
        cosmos_source, source_uri, target_uri, unique_db_name, tmp_path):
    """`dataworks migrate` from the stand-in's portal connection string: exact copy, and the
    report's request_units is the sum of the charges getLastRequestStatistics answered."""
    src = unique_db_name + "_src"
    load(source_uri, src, "orders", mixed_documents(2000, seed=5))
    env = migrate_env(cosmos_source.portal_uri("acct"), target_uri, src, unique_db_name)
    metrics_file = tmp_path / "metrics.json"
    result = cli(["migrate", "--batch-size", "400",
                  "--checkpoint-store", f"file:{tmp_path / 'ckpt'}",
                  "--metrics-file", str(metrics_file)], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert raw_by_id(target_uri, unique_db_name, "orders") == raw_by_id(source_uri, src,
                                                                        "orders")
    report = json.loads(Path(metrics_file).read_text())["summary"]["report"]
    counters = cosmos_source.counters
    assert counters.statistics_answered >= 5  # one per 400-document batch at least
    assert report["request_units"] == pytest.approx(counters.statistics_request_units)
    assert report["request_units"] >= 2000 * 0.2  # ~0.3 KB documents at 1 RU/KB
    # reads, and the count that verified them (--verify count: one per partition)
    assert set(report["request_units_by"]) <= {"source:find", "source:getMore",
                                               "source:aggregate"}
    assert sum(report["request_units_by"].values()) == pytest.approx(report["request_units"])
    assert f"request units: {report['request_units']:,.1f} RU" in result.stdout
    # the portal's appName reaches Cosmos on every connection DataWorks opened (section 7)
    assert set(counters.app_names) == {"@acct@"}
    # every read the run's cursors made is in the report, the empty last getMore included
    assert report["request_units_by"]["source:getMore"] == pytest.approx(
        counters.charged_by_command["getMore"])
    for secret in (COSMOS_TEST_KEY, quote_plus(COSMOS_TEST_KEY)):  # the account key
        assert secret not in result.stdout + result.stderr
        assert secret not in metrics_file.read_text()
    with MongoClient(source_uri) as client:
        client.drop_database(src)
    with MongoClient(target_uri) as client:
        client.drop_database(unique_db_name)


def test_migrate_to_a_throttled_cosmos_target_copies_exactly(source_uri, target_uri,
                                                             unique_db_name, tmp_path):
    """A target at 1,000 RU/s cuts nearly every 250-document insert (1,375 RU): the run
    must re-send exactly the refused documents, count each throttled batch, and end exact."""
    src = unique_db_name + "_src"
    load(source_uri, src, "orders", mixed_documents(1000, seed=9))
    with CosmosStandIn.in_front_of(target_uri, ru_per_s=1000, account="acct",
                                   key=COSMOS_TEST_KEY) as target:
        env = migrate_env(source_uri, target.portal_uri(), src, unique_db_name)
        metrics_file = tmp_path / "metrics.json"
        result = cli(["migrate", "--batch-size", "250", "--target-kind", "cosmos",
                      "--checkpoint-store", f"file:{tmp_path / 'ckpt'}",
                      "--metrics-file", str(metrics_file)], env, tmp_path, timeout=300)
        counters = target.counters
    assert result.returncode == 0, result.stderr
    assert raw_by_id(target_uri, unique_db_name, "orders") == raw_by_id(source_uri, src,
                                                                        "orders")
    report = json.loads(metrics_file.read_text())["summary"]["report"]
    assert counters.partial_inserts >= 3 and counters.documents_refused > 0
    assert report["written"] == 1000
    assert report["throttled"] == counters.partial_inserts + counters.throttled
    assert report["request_units"] == pytest.approx(counters.statistics_request_units)
    assert report["request_units"] == pytest.approx(1000 * 5.5)  # each document written once
    with MongoClient(source_uri) as client:
        client.drop_database(src)
    with MongoClient(target_uri) as client:
        client.drop_database(unique_db_name)


def test_command_line_stand_in_prints_its_uri_and_counters(source_uri, kb_docs):
    process = subprocess.Popen(
        [sys.executable, "-m", "dataworks.testing.cosmos", "--upstream", source_uri,
         "--ru-per-s", "5"], stdout=subprocess.PIPE, text=True)
    try:
        uri = process.stdout.readline().strip()
        assert "replicaSet=globaldb" in uri
        with MongoClient(uri, serverSelectionTimeoutMS=10_000) as client:
            assert len(list(client[kb_docs].docs.find().limit(300).batch_size(300))) == 300
            with pytest.raises(OperationFailure) as failure:
                client[kb_docs].docs.find_one()
    finally:
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
    assert failure.value.code == 16500 and process.returncode == 0
    counters = json.loads(out.strip().splitlines()[-1])
    assert counters["throttled"] >= 1 and counters["request_units"] > 0


# -- change streams ------------------------------------------------------------------------


@pytest.mark.parametrize("pipeline, options, message", [
    ([], {"full_document": "updateLookup"}, "followed by a match and then a project stage"),
    (CHANGE_PIPELINE[:1], {"full_document": "updateLookup"}, "followed by a match"),
    ([CHANGE_PIPELINE[0], {"$project": {"operationType": 1}}],
     {"full_document": "updateLookup"}, "may only include"),
    (CHANGE_PIPELINE, {}, "updateLookup"),
])
def test_change_streams_of_another_shape_are_refused(cosmos_source, unique_db_name, pipeline,
                                                     options, message):
    with portal_client(cosmos_source) as client:
        with pytest.raises(OperationFailure) as failure:
            client[unique_db_name].c.watch(pipeline, **options)
        with pytest.raises(OperationFailure):
            client[unique_db_name].watch(CHANGE_PIPELINE, full_document="updateLookup")
    assert failure.value.code == 2 and message in str(failure.value)
    assert cosmos_source.counters.change_streams_refused == 2


@pytest.fixture(scope="module")
def oplog_server(tmp_path_factory):
    """mongo-java-server with its oplog: the test server whose change streams are real."""
    from dataworks.testing.mongojava import MongoJavaServer

    try:
        server = MongoJavaServer(tmp_path_factory.mktemp("mongojava-oplog"), oplog=True,
                                 heap="256m").start()
    except Exception as exc:  # noqa: BLE001 - a loud failure, never a skip
        pytest.fail(f"no mongo-java-server with an oplog ({exc}); run scripts/setup",
                    pytrace=False)
    yield server.uri
    server.stop()


def next_changes(stream, count: int, timeout_s: float = 10.0) -> list[dict]:
    changes, deadline = [], time.monotonic() + timeout_s
    while len(changes) < count and time.monotonic() < deadline:
        change = stream.try_next()
        if change is not None:
            changes.append(change)
    return changes


def test_change_stream_follows_cosmos_rules(oplog_server, unique_db_name):
    """Inserts, updates and replaces arrive with the full document and only the projected
    fields; deletes never arrive; a throttled getMore is an empty page, and the stream goes
    on where it was once budget returns."""
    with CosmosStandIn.in_front_of(oplog_server) as standin, \
            MongoClient(oplog_server) as direct, portal_client(standin) as client:
        server_side = direct[unique_db_name].c
        server_side.insert_one({"_id": 0})
        with client[unique_db_name].c.watch(CHANGE_PIPELINE, full_document="updateLookup",
                                            max_await_time_ms=100) as stream:
            server_side.insert_one({"_id": 1, "a": 1})
            server_side.update_one({"_id": 1}, {"$set": {"a": 2}})
            changes = next_changes(stream, 2)  # updateLookup reads the document as it is now
            server_side.delete_one({"_id": 0})
            server_side.replace_one({"_id": 1}, {"b": 3})
            server_side.insert_one({"_id": 2})
            changes += next_changes(stream, 2)
            assert stream.try_next() is None  # nothing more: the delete never comes

            standin.set_budget(0)
            server_side.insert_one({"_id": 3})
            assert [stream.try_next() for _ in range(3)] == [None, None, None]
            empty_pages = standin.counters.change_stream_empty_pages
            standin.set_budget(None)
            after = next_changes(stream, 1)
    assert [c["fullDocument"] for c in changes] == [
        {"_id": 1, "a": 1}, {"_id": 1, "a": 2}, {"_id": 1, "b": 3}, {"_id": 2}]
    assert [c["documentKey"] for c in changes] == [{"_id": 1}, {"_id": 1}, {"_id": 1},
                                                   {"_id": 2}]
    for change in changes:
        assert set(change) <= {"_id", "fullDocument", "ns", "documentKey"}, change
    assert empty_pages == 3
    assert [c["fullDocument"] for c in after] == [{"_id": 3}]
    assert standin.counters.change_streams_refused == 0


def test_change_stream_never_has_delete_events(oplog_server, unique_db_name):
    """Even a `$match` that would let a delete through (all events of `_id` 5) gets none."""
    pipeline = [{"$match": {"documentKey._id": 5}}, CHANGE_PIPELINE[1]]
    with CosmosStandIn.in_front_of(oplog_server) as standin, \
            MongoClient(oplog_server) as direct, portal_client(standin) as client:
        with client[unique_db_name].c.watch(pipeline, full_document="updateLookup",
                                            max_await_time_ms=100) as stream:
            direct[unique_db_name].c.insert_one({"_id": 5})
            direct[unique_db_name].c.delete_one({"_id": 5})
            direct[unique_db_name].c.insert_one({"_id": 5, "again": True})
            changes = next_changes(stream, 2, timeout_s=3)
    assert [c["fullDocument"] for c in changes] == [{"_id": 5}, {"_id": 5, "again": True}]
