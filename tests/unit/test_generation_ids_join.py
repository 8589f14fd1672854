"""A worker's batch blob: `joined_with_ids` is `b"".join(with_ids(...))` in one copy."""

from __future__ import annotations

import bson

from dataworks.generators.ids import id_prefix, joined_with_ids, object_id, with_ids


def test_joined_with_ids_equals_with_ids_joined() -> None:
    prefix = id_prefix(42)
    docs = [bson.encode({"a": 1}), bson.encode({"_id": "own", "a": 2}), bson.encode({}),
            bson.encode({"b": "x" * 300, "c": [1, 2]}), bson.encode({"a": 5, "_id": 9})]
    for start in (0, 7, 2**40 - len(docs)):
        blob = joined_with_ids(docs, start, prefix)
        assert blob == b"".join(with_ids(docs, start, prefix))
        decoded = bson.decode_all(blob)
        assert [d["_id"] for d in decoded[:1] + decoded[2:4]] == [
            object_id(42, start), object_id(42, start + 2), object_id(42, start + 3)]
        assert decoded[1]["_id"] == "own"
    assert joined_with_ids([], 0, prefix) == b""
