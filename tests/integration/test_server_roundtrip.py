"""The test server is real: writes and reads go through PyMongo's AsyncMongoClient."""

from __future__ import annotations

import datetime as dt

import bson
from bson import Binary, Int64, ObjectId


async def test_async_client_writes_and_reads_back(mongo_client, unique_db_name):
    collection = mongo_client[unique_db_name]["roundtrip"]
    docs = [
        {"_id": ObjectId(), "n": Int64(2**40), "when": dt.datetime(2024, 5, 1), "b": Binary(b"x")},
        {"_id": "string-id", "nested": {"a": [1, 2, {"b": None}]}},
        {"_id": 7, "f": 1.5},
    ]
    result = await collection.insert_many(docs, ordered=False)
    assert len(result.inserted_ids) == 3
    found = {d["_id"]: d for d in await collection.find({}).to_list()}
    assert found[7]["f"] == 1.5
    assert found["string-id"]["nested"]["a"][2] == {"b": None}
    assert found[docs[0]["_id"]]["n"] == 2**40
    await mongo_client.drop_database(unique_db_name)


async def test_source_and_target_are_distinct_servers(source_uri, target_uri):
    import os

    if not os.environ.get("DATAWORKS_TEST_MONGO_URI"):
        assert source_uri != target_uri


async def test_replies_without_a_batch_size_are_sized_as_mongodb_sizes_them(mongo_client,
                                                                            unique_db_name):
    """A `find` without `batchSize` answers 101 documents, a `getMore` without one at most
    about 16 MiB, as MongoDB does (FerretDB answers about 1 MB). mongo-java-server's library put everything left in one reply
    (170 MB for 100,000 volvo documents), which mongodump's driver refuses ("length of read
    message too large"), so the benchmark had no mongo-tools row on it."""
    db = mongo_client[unique_db_name]
    filler = "x" * 4_000
    await db["big"].insert_many([{"_id": i, "filler": filler} for i in range(6_000)])  # ~24 MB
    first = await db.command({"find": "big"})
    assert len(first["cursor"]["firstBatch"]) == 101
    more = await db.command({"getMore": first["cursor"]["id"], "collection": "big"})
    page = more["cursor"]["nextBatch"]
    size = sum(len(bson.encode(doc)) for doc in page)
    assert 101 + len(page) < 6_000, "the getMore answered everything left"
    assert size <= 16 * 2**20 + 5_000, size
    if more["cursor"]["id"]:
        await db.command({"killCursors": "big", "cursors": [more["cursor"]["id"]]})
    await mongo_client.drop_database(unique_db_name)
