"""Verification building blocks without a server: raw splitting, `_id` identity and order,
partition planning, the merge (on fake cursors), reconciliation and the report."""

from __future__ import annotations

import json
import random

import bson
import pytest
from bson import Decimal128, Int64, ObjectId
from pymongo.errors import AutoReconnect

from dataworks.core.retry import RetryPolicy
from dataworks.monitoring.metrics import RunMetrics, current_run
from dataworks.verify.hashcompare import (
    Differences,
    ListingBudget,
    compare_partition,
    expected_documents,
)
from dataworks.verify.partitions import VerifyPartition, partitions_from_sample
from dataworks.verify.rawdocs import id_key, sort_key, split_documents
from dataworks.verify.report import VerifyMode, VerifyReport


def test_split_documents_returns_each_document_bytes():
    docs = [bson.encode({"_id": i, "pad": "x" * i}) for i in range(5)]
    assert split_documents(b"".join(docs)) == docs
    assert split_documents(b"") == []


def test_id_key_treats_numeric_types_as_one_id_and_keeps_field_order():
    assert id_key(1) == id_key(1.0) == id_key(Int64(1)) == id_key(Decimal128("1"))
    assert id_key(True) != id_key(1)
    assert id_key({"a": 1, "b": 2}) != id_key({"b": 2, "a": 1})
    assert id_key("1") != id_key(1)


def test_sort_key_follows_bson_type_order():
    oid = ObjectId()
    values = [True, oid, "b", {"a": 1}, 2.5, None, "a", 1, bson.Binary(b"z", 0)]
    ordered = sorted(values, key=sort_key)
    assert ordered == [None, 1, 2.5, "a", "b", {"a": 1}, bson.Binary(b"z", 0), oid, True]


def test_partitions_from_sample_cover_every_type():
    ids = [ObjectId() for _ in range(64)] + list(range(64)) + [{"x": 1}]
    parts = partitions_from_sample(ids, 4)
    groups = [p.filter.get("_id", {}).get("$type") for p in parts]
    assert "objectId" in groups and "number" in groups
    assert parts[-1].filter == {"$nor": [{"_id": {"$type": "number"}},
                                         {"_id": {"$type": "objectId"}}]}
    assert len(parts) >= 4
    assert partitions_from_sample([], 4) == [VerifyPartition()]


class _FakeCursor:
    """A raw-batch cursor over pre-encoded documents, in `_id` order."""

    def __init__(self, docs: list[bytes], batch: int) -> None:
        self._batches = [b"".join(docs[i:i + batch]) for i in range(0, len(docs), batch)]

    def __aiter__(self):
        return self._gen()

    async def _gen(self):
        for batch in self._batches:
            yield batch

    async def close(self) -> None:
        pass


class _FakeCollection:
    def __init__(self, docs: list[dict], batch: int) -> None:
        ordered = sorted(docs, key=lambda d: sort_key(d["_id"]))
        self._docs = [bson.encode(d) for d in ordered]
        self._batch = batch

    def find_raw_batches(self, *args, **kwargs):
        return _FakeCursor(self._docs, self._batch)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_merge_finds_exactly_the_differences(seed):
    rng = random.Random(seed)
    source = [{"_id": i if i % 3 else f"s{i}", "v": i} for i in range(2000)]
    target = [dict(d) for d in source]
    deleted = {target.pop(rng.randrange(len(target)))["_id"] for _ in range(7)}
    changed = set()
    for _ in range(5):
        doc = target[rng.randrange(len(target))]
        doc["v"] = -1
        changed.add(doc["_id"])
    extra = {f"zz{i}" for i in range(3)} | {10_000}
    target += [{"_id": e} for e in extra]
    found = await compare_partition(
        _FakeCollection(source, 97), _FakeCollection(target, 64), VerifyPartition()
    )
    found.reconcile()
    assert {v for v, _ in found.missing.values()} == deleted
    assert {v for v, _ in found.extra.values()} == extra
    assert set(found.changed.values()) == changed
    assert found.matched == 2000 - len(deleted) - len(changed)
    assert (found.source_docs, found.target_docs) == (2000, len(target))


async def test_merge_with_a_transform_compares_transformed_documents():
    source = [{"_id": i, "v": i} for i in range(300)]
    target = [{"_id": i, "v": i, "double": 2 * i} for i in range(300)]
    identity = await compare_partition(
        _FakeCollection(source, 50), _FakeCollection(target, 50), VerifyPartition()
    )
    assert len(identity.changed) == 300
    found = await compare_partition(
        _FakeCollection(source, 50), _FakeCollection(target, 50), VerifyPartition(),
        transform=lambda d: {**d, "double": 2 * d["v"]},
    )
    assert found.matched == 300 and not found.changed and not found.missing


async def test_expected_documents_handles_lists_none_and_async():
    raw = bson.encode({"_id": 1, "a": 2})

    async def split(doc):
        return [{"_id": doc["_id"]}, {"_id": -doc["_id"]}]

    assert await expected_documents(raw, None) == [raw]
    assert await expected_documents(raw, lambda d: None) == []
    assert await expected_documents(raw, split) == [bson.encode({"_id": 1}),
                                                    bson.encode({"_id": -1})]
    # _id goes first, as PyMongo's insert puts it
    assert await expected_documents(raw, lambda d: {"a": 2, "_id": 1}) == [raw]


def test_reconcile_pairs_moved_ids():
    found = Differences()
    same, other = bson.encode({"_id": 1, "a": 1}), bson.encode({"_id": 2, "a": 1})
    found.add_missing(same)
    found.add_extra(same)
    found.add_missing(other)
    found.add_extra(bson.encode({"_id": 2, "a": 9}))
    found.reconcile()
    assert found.matched == 1 and list(found.changed.values()) == [2]
    assert not found.missing and not found.extra


def test_report_json_has_every_id_and_display_is_capped(tmp_path):
    ids = [ObjectId() for _ in range(150)]
    report = VerifyReport(VerifyMode.HASH, "a.b", "c.d", missing_ids=ids, changed_ids=[7])
    assert not report.equal
    assert len(report.to_dict(limit=100)["missing_ids"]) == 100
    path = tmp_path / "r.json"
    report.write_json(path)
    data = json.loads(path.read_text())
    assert data["missing_count"] == 150 and len(data["missing_ids"]) == 150
    assert data["missing_ids"][0] == {"$oid": str(ids[0])}
    assert data["changed_ids"] == [7]


def test_count_report_equality():
    assert VerifyReport(VerifyMode.COUNT, "a", "b", source_count=3, target_count=3).equal
    assert not VerifyReport(VerifyMode.COUNT, "a", "b", source_count=3, target_count=2).equal


class _FlakyCollection(_FakeCollection):
    """Drops its cursor (AutoReconnect) after `fail_after` batches, `failures` times; a
    reopened cursor honours the `$gt` of the resume filter it is given."""

    def __init__(self, docs: list[dict], batch: int, fail_after: int, failures: int) -> None:
        super().__init__(docs, batch)
        self.fail_after, self.failures, self.queries = fail_after, failures, []

    def find_raw_batches(self, query, **kwargs):
        self.queries.append(query)
        after = _gt_of(query)
        docs = [d for d in self._docs
                if after is None or sort_key(bson.decode(d)["_id"]) > sort_key(after)]
        cursor = _FakeCursor(docs, self._batch)
        if self.failures > 0:
            self.failures -= 1
            limit = self.fail_after

            async def gen():
                for n, batch in enumerate(cursor._batches):
                    if n == limit:
                        raise AutoReconnect("connection reset")
                    yield batch

            return _Iter(gen)
        return cursor


class _Iter:
    def __init__(self, gen) -> None:
        self._gen = gen

    def __aiter__(self):
        return self._gen()

    async def close(self) -> None:
        pass


def _gt_of(query):
    if not query:
        return None
    for clause in query.get("$or", []):
        if "$gt" in clause.get("_id", {}):
            return clause["_id"]["$gt"]
    return None


async def test_a_dropped_cursor_is_reopened_after_the_last_delivered_id():
    docs = [{"_id": i, "v": i} for i in range(1000)]
    flaky = _FlakyCollection(docs, 100, fail_after=3, failures=2)
    found = await compare_partition(
        flaky, _FakeCollection(docs, 100), VerifyPartition(),
        policy=RetryPolicy(base_delay_s=0.001, max_delay_s=0.001),
    )
    assert found.matched == 1000 and not found.missing and not found.extra
    assert found.source_docs == 1000
    assert len(flaky.queries) == 3
    assert _gt_of(flaky.queries[1]) == 299  # 3 batches of 100 delivered before the drop
    assert _gt_of(flaky.queries[2]) == 599


async def test_differences_beyond_the_listing_limit_are_counted_not_listed():
    """A half-copied target must not make verify hold every missing `_id`: past the limit
    (shared by all partitions) differences are only counted, and the counts stay exact."""
    source = [{"_id": i, "v": i} for i in range(1_000)]
    target = [dict(d) for d in source[:400]] + [{"_id": f"x{i}"} for i in range(30)]
    target[5]["v"] = -1  # one changed document
    budget = ListingBudget(25)
    found = await compare_partition(
        _FakeCollection(source, 64), _FakeCollection(target, 64), VerifyPartition(),
        budget=budget,
    )
    listed = len(found.missing) + len(found.extra) + len(found.changed)
    assert listed == 25 and budget.left == 0
    assert len(found.missing) + found.unlisted.get("missing", 0) == 600
    assert len(found.extra) + found.unlisted.get("extra", 0) == 30
    assert len(found.changed) + found.unlisted.get("changed", 0) == 1

    report = VerifyReport(VerifyMode.HASH, "s", "t", unlisted=dict(found.unlisted),
                          missing_ids=[v for v, _ in found.missing.values()],
                          extra_ids=[v for v, _ in found.extra.values()],
                          changed_ids=list(found.changed.values()))
    assert (report.missing_count, report.extra_count, report.changed_count) == (600, 30, 1)
    assert not report.equal
    assert report.to_dict()["missing_count"] == 600 and len(report.to_dict()["missing_ids"]) < 25


class _NaturalFake:
    """A collection that returns its documents in the order given (its natural order) unless
    the cursor is sorted; records each cursor's sort. `fail_after`: the first unsorted cursor
    drops after that many batches."""

    def __init__(self, docs: list[dict], batch: int, fail_after: int | None = None) -> None:
        self._natural = [bson.encode(d) for d in docs]
        self._sorted = [bson.encode(d) for d in sorted(docs, key=lambda d: sort_key(d["_id"]))]
        self._batch, self.fail_after, self.sorts = batch, fail_after, []

    def find_raw_batches(self, query, **kwargs):
        self.sorts.append(kwargs.get("sort"))
        if kwargs.get("sort"):
            return _FakeCursor(self._sorted, self._batch)
        cursor = _FakeCursor(self._natural, self._batch)
        limit, self.fail_after = self.fail_after, None
        if limit is None:
            return cursor

        async def gen():
            for n, batch in enumerate(cursor._batches):
                if n == limit:
                    raise AutoReconnect("connection reset")
                yield batch

        return _Iter(gen)


def _shuffled_in_windows(docs: list[dict], rng: random.Random, window: int) -> list[dict]:
    """What concurrent insert workers leave: the order kept, but batches swapped nearby."""
    out = []
    for start in range(0, len(docs), window):
        part = docs[start:start + window]
        rng.shuffle(part)
        out += part
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_natural_order_match_finds_exactly_the_differences(seed):
    """Both sides read unsorted (a source that cannot seek): same differences as the `_id`
    merge, whatever the two natural orders, without a sort and without a second read."""
    rng = random.Random(seed)
    source = [{"_id": i if i % 3 else f"s{i}", "v": i} for i in range(3000)]
    rng.shuffle(source)  # natural order is not `_id` order
    target = _shuffled_in_windows([dict(d) for d in source], rng, 64)
    deleted = {target.pop(rng.randrange(len(target)))["_id"] for _ in range(7)}
    changed = set()
    for _ in range(5):
        doc = target[rng.randrange(len(target))]
        doc["v"] = -1
        changed.add(doc["_id"])
    changed_type = next(d for d in target if isinstance(d["_id"], int) and d["_id"] not in
                        changed | deleted)
    changed_type["_id"] = float(changed_type["_id"])  # the same `_id` to the server
    changed.add(changed_type["_id"])
    extra = {f"zz{i}" for i in range(3)} | {10_000}
    for e in extra:
        target.insert(rng.randrange(len(target)), {"_id": e})
    target += [{"_id": f"tail{i}"} for i in range(2)]  # extra after the source's end
    extra |= {"tail0", "tail1"}
    left, right = _NaturalFake(source, 97), _NaturalFake(target, 64)
    found = await compare_partition(left, right, VerifyPartition(natural=True))
    found.reconcile()
    assert left.sorts == [None] and right.sorts == [None]
    assert not found.notes
    assert {v for v, _ in found.missing.values()} == deleted
    assert {v for v, _ in found.extra.values()} == extra
    assert set(found.changed.values()) == changed
    assert found.matched == 3000 - len(deleted) - len(changed)
    assert found.compared == 3000 - len(deleted)
    assert (found.source_docs, found.target_docs) == (3000, len(target))

    # a target missing its last third (a copy that stopped): every one of them is missing
    cut = _NaturalFake(source[:2000], 64)
    found = await compare_partition(_NaturalFake(source, 97), cut,
                                    VerifyPartition(natural=True))
    assert found.matched == 2000 and len(found.missing) == 1000 and not found.extra


async def test_natural_orders_too_far_apart_are_compared_again_in_id_order():
    """Past the unmatched buffer the partition is read again sorted, from scratch: the result
    (and the shared listing budget) is that of the `_id` merge."""
    source = [{"_id": i, "v": i} for i in range(2000)]
    target = [dict(d) for d in reversed(source)]
    target[10]["v"] = -1
    del target[500]
    left, right = _NaturalFake(source, 100), _NaturalFake(target, 100)
    budget = ListingBudget(10)
    metrics = RunMetrics()
    with current_run(metrics), metrics.in_phase("verifying", total=2000):
        found = await compare_partition(left, right, VerifyPartition(natural=True),
                                        budget=budget, unmatched_limit=20_000)
        assert metrics.phase_done == 2000  # the abandoned attempt's reads are taken back
    assert left.sorts == [None, [("_id", 1)]] and right.sorts == [None, [("_id", 1)]]
    assert found.notes and "compared again in _id order" in found.notes[0]
    assert found.matched == 1998 and found.source_docs == 2000
    assert {v for v, _ in found.missing.values()} == {source[-501]["_id"]}
    assert set(found.changed.values()) == {target[10]["_id"]}
    assert budget.left == 8


async def test_a_failed_natural_order_cursor_is_compared_again_in_id_order():
    """An unsorted cursor cannot resume after an `_id`: a dropped one makes the partition be
    read again sorted (where reopening after the last `_id` works)."""
    docs = [{"_id": i, "v": i} for i in range(1000)]
    flaky = _NaturalFake(docs, 100, fail_after=3)
    found = await compare_partition(
        flaky, _NaturalFake(docs, 100), VerifyPartition(natural=True),
        policy=RetryPolicy(base_delay_s=0.001, max_delay_s=0.001),
    )
    assert flaky.sorts == [None, [("_id", 1)]]
    assert found.matched == 1000 and found.source_docs == 1000
    assert "AutoReconnect" in found.notes[0]


def test_the_engines_natural_partition_is_verified_in_natural_order():
    from dataworks.migrations.partitioning import NATURAL, Partition
    from dataworks.verify.run import as_verify_partition

    assert as_verify_partition(Partition(0, NATURAL)).natural
    assert not as_verify_partition(Partition(0, "objectId", 1, 9)).natural


async def test_natural_order_pairs_changed_documents_whenever_they_meet():
    """A changed document is named changed (not missing plus extra) whether its two versions
    meet in step, after the other side ended, or when the buffer fills: a target where every
    document changed (a wrong transform) never overflows it."""
    source = [{"_id": i, "v": i} for i in range(200)]
    target = [{"_id": 199, "v": -1}] + [dict(d) for d in source[:198]]  # 198 missing
    found = await compare_partition(_NaturalFake(source, 50), _NaturalFake(target, 50),
                                    VerifyPartition(natural=True))
    assert set(found.changed.values()) == {199}
    assert {v for v, _ in found.missing.values()} == {198} and not found.extra
    assert found.matched == 198 and found.compared == 199

    changed = [{"_id": i, "v": -i - 1} for i in range(2000)]
    left = _NaturalFake([{"_id": i, "v": i} for i in range(2000)], 100)
    right = _NaturalFake(changed, 100)
    found = await compare_partition(left, right, VerifyPartition(natural=True),
                                    unmatched_limit=20_000)
    assert left.sorts == [None] and not found.notes
    assert len(found.changed) == 2000 and found.compared == 2000 and not found.missing


async def test_a_natural_order_attempt_gives_back_the_listing_budget_it_used():
    """What the abandoned natural-order attempt listed is not lost to the `_id` merge that
    replaces it."""
    source = [{"_id": i, "v": i} for i in range(2000)]
    target = [{"_id": i, "v": -1} for i in range(150)] + list(reversed(source[150:]))
    budget = ListingBudget(10)
    found = await compare_partition(_NaturalFake(source, 100), _NaturalFake(target, 100),
                                    VerifyPartition(natural=True), budget=budget,
                                    unmatched_limit=20_000)
    assert found.notes  # compared again in `_id` order
    assert len(found.changed) == 10 and found.unlisted == {"changed": 140}
    assert budget.left == 0
