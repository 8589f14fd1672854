"""Natural-order resume points: `_id` bytes cut from raw documents, and the prefix digest."""

from __future__ import annotations

import datetime
import uuid

import bson
import pytest
from bson import Binary, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.raw_bson import RawBSONDocument

from dataworks.errors import CheckpointError
from dataworks.migrations.natural import IdSequence, check_same_prefix, id_element
from dataworks.migrations.partitioning import ALL, NATURAL, Partition

ID_VALUES = [
    ObjectId("64b7f0c2a1b2c3d4e5f60718"), "SO-000001", "", 7, Int64(2**40), 1.5,
    Decimal128("12.30"), datetime.datetime(2026, 11, 22, 12, 0), Binary(b"\x00\x01", 0),
    Binary.from_uuid(uuid.UUID(int=5)), {"order": 1, "line": 2}, [1, 2], True, None,
    Timestamp(5, 1), Regex("^a"), MinKey(), MaxKey(),
]


def slow_id_element(value):
    return bson.encode({"_id": value})[4:-1]


@pytest.mark.parametrize("value", ID_VALUES, ids=lambda v: type(v).__name__)
def test_id_element_equals_the_encoded_id_whatever_its_type(value):
    doc = RawBSONDocument(bson.encode({"_id": value, "name": "x", "n": [1, 2, 3]}))
    assert id_element(doc) == slow_id_element(value)


def test_id_element_finds_an_id_that_is_not_stored_first():
    doc = RawBSONDocument(bson.encode({"name": "x", "_id": 42}))
    assert id_element(doc) == slow_id_element(42)


def test_different_ids_give_different_elements():
    elements = {id_element(RawBSONDocument(bson.encode({"_id": v}))) for v in ID_VALUES}
    assert len(elements) == len(ID_VALUES)


def raw_docs(ids):
    return [RawBSONDocument(bson.encode({"_id": i, "v": str(i)})) for i in ids]


def test_the_mark_does_not_depend_on_how_documents_were_batched():
    docs = raw_docs(range(100))
    whole, pieces = IdSequence(), IdSequence()
    whole.add(docs)
    for start in range(0, 100, 7):
        pieces.add(docs[start:start + 7])
    assert whole.mark() == pieces.mark()
    assert whole.mark()["read"] == 100


def test_the_same_prefix_passes_and_a_changed_one_is_refused():
    mark_seq = IdSequence()
    mark_seq.add(raw_docs(range(50)))
    mark = mark_seq.mark()

    same = IdSequence()
    same.add(raw_docs(range(50)))
    check_same_prefix(same, mark)  # no error

    reordered = IdSequence()
    reordered.add(raw_docs([1, 0, *range(2, 50)]))
    with pytest.raises(CheckpointError, match="their _ids differ"):
        check_same_prefix(reordered, mark)

    shorter = IdSequence()
    shorter.add(raw_docs(range(40)))
    with pytest.raises(CheckpointError, match="only 40 documents"):
        check_same_prefix(shorter, mark)


def test_a_natural_partition_adds_no_id_condition_to_the_query():
    natural = Partition(0, NATURAL)
    base = {"status": "open"}
    assert natural.query(base, after={"read": 10, "ids_sha256": "x"}) == base
    assert natural.query(None) == {}
    # The `_id`-sorted single cursor still resumes after an `_id`.
    assert Partition(0, ALL).query(None, after=5) != {}
