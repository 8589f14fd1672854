"""Verification against the real servers: the 100,000-document hunt for a deleted, an added
and a modified document; sample mode; transforms; partitions; the CLI's exit codes."""

from __future__ import annotations

import asyncio
import json

import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient, MongoClient
from typer.testing import CliRunner

from dataworks.cli import app
from dataworks.core.clients import ReadOnlyCollection
from dataworks.verify import VerifyPartition, verify

BATCH = 10_000


def make_docs(n: int) -> list[dict]:
    # Small documents: FerretDB's cost is per field, and the test is about finding _ids.
    return [{"_id": ObjectId(), "n": i, "city": {"name": f"c{i % 97}"}} for i in range(n)]


async def fill(collection, docs: list[dict]) -> None:
    for start in range(0, len(docs), BATCH):
        await collection.insert_many(docs[start:start + BATCH], ordered=False)


@pytest.fixture
async def clients(source_uri, target_uri, unique_db_name, target_db_name):
    source_client: AsyncMongoClient = AsyncMongoClient(source_uri)
    target_client: AsyncMongoClient = AsyncMongoClient(target_uri)
    yield source_client[unique_db_name], target_client[target_db_name]
    await source_client.drop_database(unique_db_name)
    await target_client.drop_database(target_db_name)
    await source_client.close()
    await target_client.close()


async def test_hash_names_deleted_added_and_modified_ids_in_100k(clients):
    source_db, target_db = clients
    docs = make_docs(100_000)
    await asyncio.gather(fill(source_db.orders, docs), fill(target_db.orders, docs))
    deleted, modified, added = docs[12_345]["_id"], docs[77_777]["_id"], ObjectId()
    await target_db.orders.delete_one({"_id": deleted})
    await target_db.orders.update_one({"_id": modified}, {"$set": {"amount": -1.0}})
    await target_db.orders.insert_one({"_id": added, "n": -1})
    source = ReadOnlyCollection(source_db.orders)

    report = await verify(source, target_db.orders, "hash")
    assert not report.equal
    assert report.missing_ids == [deleted]
    assert report.extra_ids == [added]
    assert report.changed_ids == [modified]
    assert report.source_count == 100_000 and report.target_count == 100_000
    assert report.matched == 100_000 - 2


async def test_sample_finds_what_it_samples(clients):
    source_db, target_db = clients
    docs = make_docs(1000)
    await asyncio.gather(fill(source_db.s, docs), fill(target_db.s, docs))
    source = ReadOnlyCollection(source_db.s)

    clean = await verify(source, target_db.s, "sample", sample_size=200, seed=7)
    assert clean.equal and clean.source_count == 200 and clean.matched == 200

    await target_db.s.delete_one({"_id": docs[10]["_id"]})
    await target_db.s.update_one({"_id": docs[20]["_id"]}, {"$set": {"n": -5}})
    counted = await verify(source, target_db.s, "count")
    assert not counted.equal and (counted.source_count, counted.target_count) == (1000, 999)
    everything = await verify(source, target_db.s, "sample", sample_size=5000)
    assert everything.source_count == 1000  # asked for more than there are: all of them
    assert everything.missing_ids == [docs[10]["_id"]]
    assert everything.changed_ids == [docs[20]["_id"]]
    assert everything.method  # $sample, or the reservoir fallback on FerretDB


async def test_transform_is_applied_to_the_source_side(clients):
    source_db, target_db = clients
    docs = [{"_id": i, "price": i, "currency": "SEK"} for i in range(500)]

    def to_euro(doc: dict) -> dict:
        return {"_id": doc["_id"], "price_eur": doc["price"] / 10, "migrated": True}

    await source_db.t.insert_many(docs)
    await target_db.t.insert_many([to_euro(d) for d in docs])
    source = ReadOnlyCollection(source_db.t)
    raw = await verify(source, target_db.t, "hash")
    assert len(raw.changed_ids) == 500
    transformed = await verify(source, target_db.t, "hash", transform=to_euro)
    assert transformed.equal and transformed.matched == 500
    sampled = await verify(source, target_db.t, "sample", sample_size=50, transform=to_euro)
    assert sampled.equal and sampled.matched == 50


async def test_given_partitions_are_read_in_parallel_and_cover_mixed_id_types(clients):
    source_db, target_db = clients
    docs = ([{"_id": i, "v": i} for i in range(1000)] + [{"_id": f"k{i}"} for i in range(100)]
            + [{"_id": {"x": i}} for i in range(10)])
    await source_db.p.insert_many(docs)
    await target_db.p.insert_many([d for d in docs if d["_id"] not in (5, 700, "k3")])
    await target_db.p.insert_one({"_id": {"x": 99}})
    parts = [
        VerifyPartition({"_id": {"$type": "number", "$lt": 500}}),
        VerifyPartition({"_id": {"$type": "number", "$gte": 500}}),
        VerifyPartition({"_id": {"$type": "string"}}),
        VerifyPartition({"$nor": [{"_id": {"$type": "number"}}, {"_id": {"$type": "string"}}]}),
    ]
    report = await verify(ReadOnlyCollection(source_db.p), target_db.p, "hash",
                          partitions=parts, parallelism=4)
    assert report.partitions == 4
    assert report.missing_ids == [5, 700, "k3"]
    assert report.extra_ids == [{"x": 99}]
    assert report.matched == 1107


def test_cli_exit_codes_and_json_report(source_uri, target_uri, unique_db_name, target_db_name,
                                        tmp_path):
    with MongoClient(source_uri) as s, MongoClient(target_uri) as t:
        docs = [{"_id": i, "v": i} for i in range(300)]
        s[unique_db_name]["c"].insert_many(docs)
        t[target_db_name]["c"].insert_many(docs)
        args = ["--source-uri", source_uri, "--source-db", unique_db_name,
                "--source-collection", "c", "--target-uri", target_uri,
                "--target-db", target_db_name, "--target-collection", "c"]
        runner = CliRunner()
        try:
            for mode in ("count", "hash", "sample"):
                equal = runner.invoke(app, ["verify", "--mode", mode, *args])
                assert equal.exit_code == 0, equal.output
                assert "EQUAL" in equal.output
            t[target_db_name]["c"].delete_many({"_id": {"$gte": 150}})
            path = tmp_path / "report.json"
            different = runner.invoke(app, ["verify", "--mode", "hash", "--report", str(path),
                                            *args])
            assert different.exit_code == 1, different.output
            assert "missing on target (150)" in different.output
            written = json.loads(path.read_text())
            assert written["equal"] is False
            assert written["missing_ids"] == list(range(150, 300))
            assert runner.invoke(app, ["verify", "--sample-size", "0", *args]).exit_code == 2
            assert runner.invoke(app, ["verify", "--mode", "crc", *args]).exit_code == 2
            no_source = runner.invoke(app, ["verify", *args[:5], "absent", *args[6:]])
            assert no_source.exit_code == 2
            assert "does not exist" in no_source.output
        finally:
            s.drop_database(unique_db_name)
            t.drop_database(target_db_name)


STRATEGY = '''
from dataworks import BaseMigrationStrategy


class Upper(BaseMigrationStrategy):
    def transform(self, doc):
        return {**doc, "name": doc["name"].upper()}
'''


def test_cli_applies_a_strategy_transform(source_uri, target_uri, unique_db_name,
                                          target_db_name, tmp_path):
    strategy = tmp_path / "upper.py"
    strategy.write_text(STRATEGY)
    with MongoClient(source_uri) as s, MongoClient(target_uri) as t:
        docs = [{"_id": i, "name": f"n{i}"} for i in range(100)]
        s[unique_db_name]["c"].insert_many(docs)
        t[target_db_name]["c"].insert_many([{**d, "name": d["name"].upper()} for d in docs])
        args = ["verify", "--mode", "hash", "--source-uri", source_uri, "--source-db",
                unique_db_name, "--source-collection", "c", "--target-uri", target_uri,
                "--target-db", target_db_name, "--target-collection", "c"]
        runner = CliRunner()
        try:
            assert runner.invoke(app, args).exit_code == 1
            result = runner.invoke(app, [*args, "--strategy", str(strategy)])
            assert result.exit_code == 0, result.output
        finally:
            s.drop_database(unique_db_name)
            t.drop_database(target_db_name)


async def test_source_query_and_projection_narrow_the_source_side(clients):
    source_db, target_db = clients
    docs = [{"_id": i, "kind": "a" if i % 2 else "b", "secret": i} for i in range(400)]
    await source_db.q.insert_many(docs)
    await target_db.q.insert_many(
        [{"_id": d["_id"], "kind": d["kind"]} for d in docs if d["kind"] == "a"]
    )
    source = ReadOnlyCollection(source_db.q)
    narrow = {"source_query": {"kind": "a"}, "source_projection": {"secret": 0}}
    assert not (await verify(source, target_db.q, "hash")).equal
    for mode in ("count", "hash", "sample"):
        report = await verify(source, target_db.q, mode, sample_size=300, **narrow)
        assert report.equal, (mode, report.to_dict(limit=3))
    hashed = await verify(source, target_db.q, "hash", **narrow)
    assert hashed.matched == 200 and hashed.source_count == 200


async def test_a_half_copied_target_is_counted_without_listing_every_id(clients):
    """Verify run mid-migration: thousands of documents missing. Past `max_listed` they are
    only counted, and the counts and the verdict stay exact."""
    source_db, target_db = clients
    docs = make_docs(5_000)
    await asyncio.gather(fill(source_db.orders, docs), fill(target_db.orders, docs[:2_000]))
    await target_db.orders.insert_one({"_id": "stray", "n": -1})
    report = await verify(ReadOnlyCollection(source_db.orders), target_db.orders, "hash",
                          max_listed=100)
    assert not report.equal
    assert (report.missing_count, report.extra_count, report.changed_count) == (3_000, 1, 0)
    listed = len(report.missing_ids) + len(report.extra_ids)
    assert listed == 100
    assert sum(report.unlisted.values()) == 3_001 - 100
    assert report.matched == 2_000
    assert any("first 100 are listed" in note for note in report.notes)
