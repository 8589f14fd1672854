"""The test server is real: writes and reads go through PyMongo's AsyncMongoClient."""

from __future__ import annotations

import datetime as dt

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
