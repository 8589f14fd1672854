"""The before/after comparison behind `migrate --preview` (pure logic; the server side is in
tests/integration/test_authoring.py)."""

from __future__ import annotations

import datetime as dt

from bson import json_util

from dataworks.migrations.preview import (
    FieldChange,
    MigrationPreview,
    PreviewItem,
    compare,
    flatten,
)


def test_flatten_uses_dotted_paths_and_keeps_arrays_and_ids_whole() -> None:
    doc = {"_id": {"o": 1, "l": 2}, "a": {"b": {"c": 1}, "d": []}, "e": {}, "tags": [{"x": 1}]}
    assert flatten(doc) == {"_id": {"o": 1, "l": 2}, "a.b.c": 1, "a.d": [], "e": {},
                            "tags": [{"x": 1}]}


def test_compare_marks_same_changed_added_removed_in_reading_order() -> None:
    before = {"_id": 1, "name": "a", "price": 1.5, "meta": {"v": 1, "old": True}}
    after = {"_id": 1, "name": "a", "price": 150, "meta": {"v": 2}, "cents": True}
    assert compare(before, after) == [
        FieldChange("_id", "same", 1, 1),
        FieldChange("name", "same", "a", "a"),
        FieldChange("price", "changed", 1.5, 150),
        FieldChange("meta.v", "changed", 1, 2),
        FieldChange("meta.old", "removed", before=True),
        FieldChange("cents", "added", after=True),
    ]


def test_compare_sees_type_changes_python_equality_hides() -> None:
    """1 == 1.0 == True in Python, but they are different BSON values in the database."""
    kinds = [c.kind for c in compare({"a": 1, "b": 1, "c": 2}, {"a": 1.0, "b": True, "c": 2})]
    assert kinds == ["changed", "changed", "same"]


def test_outcomes_counts_and_json() -> None:
    when = dt.datetime(2024, 5, 1, 12, 0)
    preview = MigrationPreview("mongodb://127.0.0.1:1/ db.c", "s.py:S", True, [
        PreviewItem({"_id": 1, "v": 1}, [{"_id": 1, "v": 1}]),
        PreviewItem({"_id": 2, "v": 1}, [{"_id": 2, "v": 2, "at": when}]),
        PreviewItem({"_id": 3}, []),
        PreviewItem({"_id": 4}, [{"_id": 4}, {"_id": -4}]),
    ])
    assert [i.outcome for i in preview.items] == ["unchanged", "changed", "dropped", "split"]
    assert preview.counts() == {"unchanged": 1, "changed": 1, "dropped": 1, "split": 1}
    data = json_util.loads(preview.to_json())
    assert data["documents"][1]["changes"] == [[
        {"path": "v", "change": "changed", "before": 1, "after": 2},
        {"path": "at", "change": "added", "after": when},
    ]]
    assert data["documents"][2]["after"] == [] and data["documents"][2]["changes"] == []
    assert data["documents"][3]["changes"] == [[], [{"path": "_id", "change": "changed",
                                                      "before": 4, "after": -4}]]
