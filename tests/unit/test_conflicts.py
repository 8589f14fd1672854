"""Pure parts of duplicate-key classification: what a write error says, `_id` matching."""

from __future__ import annotations

from bson import Int64, ObjectId
from pymongo.errors import BulkWriteError

from dataworks.core.errors import split_bulk_error
from dataworks.migrations.conflicts import described_clash, id_key


def test_the_clashing_index_is_read_from_key_pattern_or_message_else_unknown():
    mongodb = {"code": 11000, "keyPattern": {"email": 1}, "keyValue": {"email": "a@x"},
               "errmsg": "E11000 duplicate key error collection: d.c index: email_1 dup key: "
                         "{ email: \"a@x\" }"}
    assert described_clash(mongodb) == (False, "email_1", {"email": "a@x"})
    on_id = {"code": 11000, "keyPattern": {"_id": 1}, "keyValue": {"_id": 7}}
    assert described_clash(on_id) == (True, "_id_1", {"_id": 7})
    by_message = {"code": 11000, "errmsg": "E11000 duplicate key error collection: d.c index: "
                                           "_id_ dup key: { _id: 7 }"}
    assert described_clash(by_message)[:2] == (True, "_id_")
    ferretdb = {"code": 11000, "errmsg": "E11000 duplicate key error collection: d.c"}
    assert described_clash(ferretdb) == (None, None, None)


def test_id_keys_match_as_the_server_compares_ids():
    assert id_key(1) == id_key(1.0) == id_key(Int64(1))
    assert id_key(True) != id_key(1)
    assert id_key("1") != id_key(1)
    oid = ObjectId()
    assert id_key(oid) == id_key(ObjectId(str(oid)))


def test_the_written_count_ignores_the_replys_n():
    """mongo-java-server counts duplicates in `n`: what is not in writeErrors was written."""
    exc = BulkWriteError({"writeErrors": [{"index": 0, "code": 11000, "errmsg": "dup"},
                                          {"index": 2, "code": 11000, "errmsg": "dup"}],
                          "nInserted": 4})
    out = split_bulk_error(exc, 4)
    assert out.written == 2 and out.duplicates == [0, 2]
    assert out.duplicate_errors[2]["errmsg"] == "dup"
