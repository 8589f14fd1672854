"""Transformed documents leave the reader as BSON (bounded memory), with insert_many's rules."""

from __future__ import annotations

import bson
import pytest
from bson import ObjectId
from bson.raw_bson import RawBSONDocument

from dataworks.errors import PluginError
from dataworks.migrations.reader import encode_transformed


def test_transformed_dicts_become_raw_bson_with_the_same_bytes() -> None:
    doc = {"_id": 7, "a": {"b": [1, 2]}, "c": "x"}
    [raw] = encode_transformed([dict(doc)])
    assert isinstance(raw, RawBSONDocument)
    assert raw.raw == bson.encode(doc)


def test_a_document_without_id_gets_an_objectid_first_like_insert_many() -> None:
    [raw] = encode_transformed([{"a": 1}])
    assert isinstance(raw["_id"], ObjectId)
    assert next(iter(raw.keys())) == "_id"


def test_raw_documents_pass_unchanged() -> None:
    raw = RawBSONDocument(bson.encode({"_id": 1}))
    assert encode_transformed([raw])[0] is raw


@pytest.mark.parametrize("bad", ["a string", 42, {"_id": 1, "v": object()}])
def test_output_that_cannot_be_stored_is_one_plugin_error(bad: object) -> None:
    with pytest.raises(PluginError, match="cannot be stored"):
        encode_transformed([bad])
