"""The `$sample` paths (Cosmos DB, MongoDB) that the FerretDB test server cannot take:
partition planning and sample mode, on fake collections that answer `$sample`."""

from __future__ import annotations

import bson
from bson import ObjectId
from bson.raw_bson import RawBSONDocument
from pymongo.errors import OperationFailure

from dataworks.migrations.partitioning import Partition
from dataworks.verify.partitions import VerifyPartition, plan_partitions
from dataworks.verify.run import as_verify_partition
from dataworks.verify.sample import sample_compare


class _Cursor:
    def __init__(self, items) -> None:
        self._items = list(items)

    def __aiter__(self):
        return self._gen()

    async def _gen(self):
        for item in self._items:
            yield item

    async def close(self) -> None:
        pass


class _SampleSource:
    """A source that has `$sample` (or refuses it like FerretDB, code 238)."""

    def __init__(self, docs: list[dict], has_sample: bool = True,
                 explain_error: int = 59) -> None:
        self.docs = [bson.encode(d) for d in docs]
        self.has_sample = has_sample
        self.explain_error = explain_error
        self.pipelines: list = []
        self.full_name = "db.src"

    @property
    def raw(self):
        return self

    async def explain_find(self, query, **kwargs):
        # No explain, as Cosmos DB may answer: `_id` ranges are taken to be seekable.
        raise OperationFailure("explain refused", self.explain_error)

    async def aggregate(self, pipeline, **kwargs):
        self.pipelines.append(pipeline)
        if not self.has_sample:
            raise OperationFailure("`aggregate` stage \"$sample\" is not implemented yet", 238)
        size = pipeline[0]["$sample"]["size"]
        return _Cursor(RawBSONDocument(d) for d in self.docs[:size])

    def find_raw_batches(self, query, **kwargs):
        wanted = query.get("_id", {}).get("$in")
        docs = [d for d in self.docs
                if wanted is None or bson.decode(d)["_id"] in wanted]
        return _Cursor([b"".join(docs)] if docs else [])


async def test_plan_partitions_splits_by_sampled_ids():
    docs = [{"_id": ObjectId()} for _ in range(500)]
    parts, method = await plan_partitions(_SampleSource(docs), 4)
    assert method == "$sample of 128 _ids"
    assert len(parts) == 5  # 4 objectId ranges + the catch-all for other types
    assert parts[0].filter["_id"]["$type"] == "objectId" and "$lt" in parts[0].filter["_id"]


async def test_plan_partitions_after_a_throttled_explain_still_splits_by_sample():
    """Cosmos DB may answer `explain` with throttling (16500): planning goes on from the
    sample, as before the seek check, instead of failing the verification."""
    docs = [{"_id": ObjectId()} for _ in range(500)]
    parts, method = await plan_partitions(_SampleSource(docs, explain_error=16500), 4)
    assert method == "$sample of 128 _ids" and len(parts) == 5


async def test_plan_partitions_without_sample_is_one_partition():
    source = _SampleSource([{"_id": 1}], has_sample=False)
    parts, method = await plan_partitions(source, 4)
    assert parts == [VerifyPartition()] and "no $sample (238)" in method


async def test_sample_mode_uses_sample_stage_and_finds_differences():
    docs = [{"_id": i, "v": i} for i in range(50)]
    source = _SampleSource(docs)
    target = _SampleSource([d for d in docs if d["_id"] != 3] + [])
    target.docs[4] = bson.encode({"_id": 5, "v": "changed"})  # index 4 holds _id 5
    result = await sample_compare(source, target, 50)
    assert result.method == "$sample"
    assert result.sampled == 50 and result.missing == [3] and result.changed == [5]


def test_engine_partitions_are_accepted_as_verify_partitions():
    part = as_verify_partition(Partition(2, "objectId", None, ObjectId("0" * 24)))
    assert part.filter == {"_id": {"$type": "objectId", "$lt": ObjectId("0" * 24)}}
    assert as_verify_partition({"_id": {"$type": "string"}}).filter == {
        "_id": {"$type": "string"}
    }
