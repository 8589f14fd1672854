"""Change streams on the test server (mongo-java-server through the project's launcher, or a
real MongoDB): what change-stream features and their tests can rely on."""

from __future__ import annotations

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure

pytestmark = pytest.mark.needs("change_streams")


async def test_watch_without_a_start_time_sees_later_events_with_id_document_keys(
        mongo_client, unique_db_name):
    coll = mongo_client[unique_db_name]["c"]
    await coll.insert_one({"_id": 0, "a": 0})  # before the stream: not seen
    async with await coll.watch(full_document="updateLookup") as stream:
        await coll.insert_one({"_id": 1, "a": 1})
        await coll.update_one({"_id": 1}, {"$set": {"a": 2}})
        inserted, updated = await stream.next(), await stream.next()
        first_token = inserted["_id"]
        await coll.delete_one({"_id": 1})
        deleted = await stream.next()
    assert [(e["operationType"], e["documentKey"]) for e in (inserted, updated, deleted)] == [
        ("insert", {"_id": 1}), ("update", {"_id": 1}), ("delete", {"_id": 1})]
    assert inserted["fullDocument"] == {"_id": 1, "a": 1}
    assert updated["fullDocument"]["a"] == 2

    async with await coll.watch(resume_after=first_token) as resumed:
        again = [await resumed.next(), await resumed.next()]
    assert [e["operationType"] for e in again] == ["update", "delete"]


async def test_resuming_from_before_the_kept_oplog_fails_loudly(tmp_path, unique_db_name,
                                                                test_server):
    """The launcher keeps a bounded oplog (like MongoDB's capped one): a resume point that
    fell out of it is ChangeStreamHistoryLost, never a silent gap."""
    if test_server.name != "mongojava":
        pytest.skip("the oplog window is the mongo-java-server launcher's")
    from dataworks.testing.mongojava import MongoJavaServer

    server = MongoJavaServer(tmp_path / "small-oplog", oplog=True, oplog_window=100).start()
    try:
        async with AsyncMongoClient(server.uri) as client:
            coll = client[unique_db_name]["c"]
            async with await coll.watch() as stream:
                await coll.insert_one({"_id": "first"})
                token = (await stream.next())["_id"]
            async with await coll.watch(resume_after=token) as stream:  # still kept
                await coll.insert_one({"_id": "second"})
                assert (await stream.next())["documentKey"] == {"_id": "second"}
            await coll.insert_many([{"_id": i} for i in range(200)])
            with pytest.raises(OperationFailure) as lost:
                async with await coll.watch(resume_after=token) as stream:
                    await stream.try_next()
            assert lost.value.code == 286  # ChangeStreamHistoryLost
    finally:
        server.stop()
