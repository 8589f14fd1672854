from __future__ import annotations

import pytest
from bson import Int64, ObjectId

from dataworks.checkpoints.store import FileCheckpointStore, parse_store_spec
from dataworks.errors import CheckpointError


async def test_file_store_round_trips_bson_types(tmp_path):
    store = FileCheckpointStore(tmp_path / "ckpt.json")
    mark = ObjectId()
    await store.save("run1", {"run_id": "run1", "high_water": mark, "n": Int64(2**40)})
    state = await store.load("run1")
    assert state["high_water"] == mark and isinstance(state["n"], Int64)
    assert not list(tmp_path.glob(".ckpt.json.*")), "temp file left behind"


async def test_single_file_keeps_auxiliary_records_beside_the_run(tmp_path):
    store = FileCheckpointStore(tmp_path / "ckpt.json")
    await store.save("run1", {"run_id": "run1", "done_count": 5})
    await store.save("pending-indexes:db.c", {"specs": ["a_1"]})
    assert (await store.load("run1"))["done_count"] == 5
    assert (await store.load("pending-indexes:db.c"))["specs"] == ["a_1"]
    assert {r["run_id"] for r in await store.list_runs()} == {"run1"}


async def test_directory_store_lists_and_deletes(tmp_path):
    store = FileCheckpointStore(tmp_path / "ckpts")
    await store.save("a", {"run_id": "a"})
    await store.save("b", {"run_id": "b"})
    assert [r["run_id"] for r in await store.list_runs()] == ["a", "b"]
    await store.delete("a")
    assert await store.load("a") is None


async def test_corrupt_and_foreign_files_are_user_errors(tmp_path):
    path = tmp_path / "ckpt.json"
    path.write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt"):
        await FileCheckpointStore(path).load("run1")
    path.write_text('{"run_id": "other"}')
    with pytest.raises(CheckpointError, match="belongs to another run"):
        await FileCheckpointStore(path).load("run1")


def test_store_spec_parsing():
    assert parse_store_spec("target") == ("target", None)
    assert parse_store_spec("file:/x/y.json") == ("file", "/x/y.json")
    with pytest.raises(CheckpointError):
        parse_store_spec("s3://bucket")
