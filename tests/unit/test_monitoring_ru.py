"""Cosmos DB request-unit accounting from recorded `getLastRequestStatistics` responses."""

from __future__ import annotations

import asyncio
import random

import pytest
from bson import Int64
from pymongo.errors import BulkWriteError, OperationFailure

from dataworks.core.clients import Endpoint
from dataworks.monitoring.metrics import RunMetrics
from dataworks.monitoring.ru import (
    MeteredTarget,
    RequestStatisticsError,
    RequestUnitAccounting,
    RequestUnitMeter,
    _Slots,
    is_cosmos_uri,
    parse_request_statistics,
    resolve_kind,
)

# Recorded replies (COSMOS.md section 2): current docs, older docs (OP_QUERY / insert with
# NumberLong durations, i.e. bson Int64), and an error reply.
CURRENT = {"_t": "GetRequestStatisticsResponse", "ok": 1, "CommandName": "find",
           "RequestCharge": 10.1, "RequestDurationInMilliSeconds": 7.2}
OLD_QUERY = {"_t": "GetRequestStatisticsResponse", "ok": 1, "CommandName": "OP_QUERY",
             "RequestCharge": 2.31, "RequestDurationInMilliSeconds": Int64(50)}
OLD_INSERT = {"_t": "GetRequestStatisticsResponse", "ok": 1.0, "CommandName": "insert",
              "RequestCharge": 5.71, "RequestDurationInMilliSeconds": Int64(3)}
ERROR = {"_t": "OKMongoResponse", "ok": 0, "code": 16500,
         "errmsg": "Message: {\"Errors\":[\"Request rate is large\"]} StatusCode: 429"}


def test_parse_current_and_old_replies():
    stats = parse_request_statistics(CURRENT)
    assert (stats.command, stats.charge, stats.duration_ms) == ("find", 10.1, 7.2)
    old = parse_request_statistics(OLD_QUERY)
    assert old.command == "OP_QUERY" and old.duration_ms == 50.0
    assert isinstance(old.duration_ms, float)
    no_duration = parse_request_statistics({"ok": 1, "CommandName": "x", "RequestCharge": 1})
    assert no_duration.duration_ms is None and no_duration.charge == 1.0


@pytest.mark.parametrize("reply", [
    ERROR,
    {"ok": 1, "CommandName": "find"},  # no charge
    {"ok": 1, "RequestCharge": "lots"},
    {"ok": 1, "RequestCharge": -1.0},
    {"ok": 1, "RequestCharge": float("nan")},
    {},
])
def test_unusable_replies_are_rejected(reply):
    with pytest.raises(RequestStatisticsError):
        parse_request_statistics(reply)


def test_meter_sums_recorded_replies_and_skips_bad_ones():
    metrics = RunMetrics()
    meter = RequestUnitMeter(metrics, "source")
    for reply in (CURRENT, OLD_QUERY, ERROR, CURRENT, {"ok": 1}):
        meter.record(reply)
    assert metrics.request_units == pytest.approx(10.1 + 2.31 + 10.1)
    assert metrics.request_units_by == {"source:find": pytest.approx(20.2),
                                        "source:OP_QUERY": pytest.approx(2.31)}
    assert meter.samples == 3 and meter.failures == 2


class FakeDatabase:
    def __init__(self, replies):
        self.replies = list(replies)
        self.calls = 0

    async def command(self, name):
        assert name == "getLastRequestStatistics"
        self.calls += 1
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


async def test_sample_stops_asking_a_server_without_the_command():
    metrics = RunMetrics()
    meter = RequestUnitMeter(metrics, "target")
    db = FakeDatabase([OperationFailure("no such command: 'getLastRequestStatistics'", 59)])
    assert await meter.sample(db) is None
    assert await meter.sample(db) is None
    assert db.calls == 1 and not meter.supported and metrics.request_units == 0


async def test_sample_counts_transient_failures_and_keeps_going():
    metrics = RunMetrics()
    meter = RequestUnitMeter(metrics, "target")
    db = FakeDatabase([OperationFailure("throttled", 16500), OLD_INSERT])
    await meter.sample(db)
    await meter.sample(db)
    assert meter.supported and meter.failures == 1
    assert metrics.request_units == pytest.approx(5.71)


# -- per-connection pairing -----------------------------------------------------------------


class FakeConnectionClient:
    """One connection: its statistics describe the last operation run on it, as on Cosmos."""

    def __init__(self):
        self.last = None

    def __getitem__(self, name):
        return FakeDb(self)


class FakeDb:
    def __init__(self, client):
        self.client = client

    def get_collection(self, name, **kwargs):
        return FakeColl(self.client)

    async def command(self, name):
        return dict(self.client.last)


class FakeColl:
    def __init__(self, client):
        self.client = client

    async def insert_many(self, docs, ordered=False):
        await asyncio.sleep(random.random() / 1000)  # interleave the workers
        charge = 2.5 * len(docs)
        self.client.last = {"ok": 1, "CommandName": "insert", "RequestCharge": charge,
                            "RequestDurationInMilliSeconds": Int64(4)}
        if len(docs) == 7:  # a throttled, partly applied batch still costs what it did
            raise BulkWriteError({"writeErrors": [{"index": 0, "code": 16500}], "nInserted": 6})
        await asyncio.sleep(random.random() / 1000)
        return len(docs)


class OriginalCollection:
    name = "orders"
    full_name = "db.orders"
    codec_options = None
    write_concern = None

    class database:
        name = "db"


async def test_metered_inserts_pair_each_write_with_its_own_charge():
    metrics = RunMetrics()
    slots = _Slots([FakeConnectionClient() for _ in range(3)])
    target = MeteredTarget(OriginalCollection(), slots, RequestUnitMeter(metrics, "target"))
    sizes = [random.randint(1, 50) for _ in range(60)] + [7, 7]

    async def write(n):
        try:
            await target.insert_many(list(range(n)), ordered=False)
        except BulkWriteError:
            pass

    await asyncio.gather(*(write(n) for n in sizes))
    assert metrics.request_units == pytest.approx(2.5 * sum(sizes))
    assert metrics.request_units_by == {"target:insert": pytest.approx(2.5 * sum(sizes))}
    assert target.full_name == "db.orders"  # everything else passes through


@pytest.mark.parametrize(("uri", "cosmos"), [
    ("mongodb://acct:key@acct.mongo.cosmos.azure.com:10255/?ssl=true&replicaSet=globaldb", True),
    ("mongodb+srv://u:p@c1.mongocluster.cosmos.azure.com/?tls=true", True),
    ("mongodb://a:b@acct.documents.azure.com:10255/", True),
    ("mongodb://h1.example.com:27017,h2.cosmos.azure.com:10255/", True),
    ("mongodb://127.0.0.1:27017/", False),
    ("mongodb+srv://u:p@cluster0.abcde.mongodb.net/", False),
    ("mongodb://user:pass.cosmos.azure.com@evil.example.com/", False),  # in the password
    # the exact string the Azure portal gives: "@" in appName must not end the host part
    ("mongodb://acct:a%2Bb%3D%3D@acct.mongo.cosmos.azure.com:10255/?ssl=true&replicaSet="
     "globaldb&retrywrites=false&maxIdleTimeMS=120000&appName=@acct@", True),
])
def test_cosmos_detection_by_host(uri, cosmos):
    assert is_cosmos_uri(uri) is cosmos


def test_resolve_kind_and_accounting_picks_sides():
    local = "mongodb://127.0.0.1:27017/"
    assert resolve_kind("auto", local) == "mongodb"
    assert resolve_kind("cosmos", local) == "cosmos"
    assert resolve_kind("mongodb", "mongodb://a.mongo.cosmos.azure.com:10255/") == "mongodb"
    with pytest.raises(ValueError):
        resolve_kind("atlas", local)
    endpoint = Endpoint(local, "db", "c")
    plain = RequestUnitAccounting(RunMetrics(), source=endpoint, target=endpoint)
    assert not plain.active
    sentinel = object()
    assert plain.writes(sentinel, 4) is sentinel
    forced = RequestUnitAccounting(RunMetrics(), target=endpoint, target_kind="cosmos")
    assert forced.active and forced.source is None
