"""Change events to whole-document writes (live migration), and the last-change-wins rule."""

from __future__ import annotations

import pytest

from dataworks.migrations.live_events import Change, UnsupportedChange, change_of, collapse


def test_each_event_kind_becomes_a_whole_document_write() -> None:
    doc = {"_id": 1, "a": 2}
    assert change_of({"operationType": "insert", "documentKey": {"_id": 1},
                      "fullDocument": doc}) == Change(1, doc)
    assert change_of({"operationType": "replace", "documentKey": {"_id": 1},
                      "fullDocument": doc}) == Change(1, doc)
    assert change_of({"operationType": "update", "documentKey": {"_id": 1},
                      "fullDocument": doc}) == Change(1, doc)
    assert change_of({"operationType": "delete", "documentKey": {"_id": 1}}) == Change(1, None)


def test_update_without_its_document_is_a_delete() -> None:
    assert change_of({"operationType": "update", "documentKey": {"_id": 1},
                      "fullDocument": None}) == Change(1, None)
    # mongo-java-server: the update's own fields for a document deleted since
    assert change_of({"operationType": "update", "documentKey": {"_id": 1},
                      "fullDocument": {"a": 2}}) == Change(1, None)


def test_cosmos_events_have_no_operation_type() -> None:
    doc = {"_id": "x", "a": 1}
    assert change_of({"documentKey": {"_id": "x"}, "fullDocument": doc}) == Change("x", doc)


def test_drop_and_rename_cannot_be_followed() -> None:
    for kind in ("drop", "rename", "invalidate"):
        with pytest.raises(UnsupportedChange):
            change_of({"operationType": kind})


def test_collapse_keeps_the_last_change_of_each_id() -> None:
    changes = [Change(1, {"_id": 1, "v": 1}), Change(2, {"_id": 2}), Change(1, None),
               Change(1.0, {"_id": 1, "v": 3}), Change(True, {"_id": True})]
    assert collapse(changes) == [Change(2, {"_id": 2}), Change(1.0, {"_id": 1, "v": 3}),
                                 Change(True, {"_id": True})]
    nested = [Change({"k": 1}, None), Change({"k": 1}, {"_id": {"k": 1}})]
    assert collapse(nested) == [Change({"k": 1}, {"_id": {"k": 1}})]
