"""Split a collection into `_id` ranges both sides can be read by, in parallel.

A range is per BSON type bracket (`{_id: {$type: "objectId", $gte: a, $lt: b}}`): MongoDB's
`$gte`/`$lt` only match values of the bound's own bracket, so one range never spans types.
Boundaries come from `$sample` on the source (Cosmos DB and MongoDB have it). A server
without `$sample` (FerretDB) gets a single partition: such servers do not push `_id` ranges
down to an index either (measured on FerretDB 1.24: a 1/8 range costs 70% of a full scan),
so splitting would multiply scans instead of sharing one. The same holds for any server
whose `explain` says an `_id` range is a collection scan (`PartitionPlanner.can_seek`).
Such a server also sorts the whole collection in memory before a cursor sorted by `_id`
returns its first batch, so that single partition is read in natural order (`natural`):
see `hashcompare.compare_partition`.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo.errors import OperationFailure, PyMongoError

from dataworks.core.clients import ReadOnlyCollection
from dataworks.migrations.partitioning import (
    ALL,
    NATURAL,
    OTHER,
    RANGE_GROUPS,
    Partition,
    PartitionPlanner,
)
from dataworks.verify.rawdocs import document_id, sort_key

#: Type brackets worth splitting, by sort rank, with their `$type` alias.
SPLITTABLE = {10: "number", 15: "string", 35: "objectId", 45: "date"}
SAMPLES_PER_PARTITION = 32


@dataclass(frozen=True)
class VerifyPartition:
    """One slice of the `_id` space, read identically from both sides.

    `natural`: read both sides unsorted (a server that cannot seek `_id` ranges sorts the
    whole collection for an `_id` order) and match documents in any order, within a bounded
    buffer; past it the partition is compared again in `_id` order."""

    filter: Mapping[str, Any] = field(default_factory=dict)
    label: str = "all"
    natural: bool = False


def _ranges(alias: str, bounds: list[Any]) -> list[VerifyPartition]:
    parts = []
    edges: list[Any] = [None, *bounds, None]
    for index, (low, high) in enumerate(itertools.pairwise(edges)):
        condition: dict[str, Any] = {"$type": alias}
        if low is not None:
            condition["$gte"] = low
        if high is not None:
            condition["$lt"] = high
        parts.append(VerifyPartition({"_id": condition}, f"{alias} {index + 1}/{len(edges) - 1}"))
    return parts


def partitions_from_sample(sampled_ids: list[Any], count: int) -> list[VerifyPartition]:
    """Ranges with about equal numbers of sampled `_id`s, plus one partition for the type
    brackets not split (so the partitions together always cover the whole collection)."""
    by_rank: dict[int, list[Any]] = {}
    for value in sampled_ids:
        rank = sort_key(value)[0]
        if rank in SPLITTABLE:
            by_rank.setdefault(rank, []).append(value)
    if not by_rank or count <= 1:
        return [VerifyPartition()]
    total = sum(len(v) for v in by_rank.values())
    parts: list[VerifyPartition] = []
    for rank, values in sorted(by_rank.items()):
        values.sort(key=sort_key)
        wanted = max(1, round(count * len(values) / total))
        bounds: list[Any] = []
        for i in range(1, wanted):
            candidate = values[i * len(values) // wanted]
            if not bounds or sort_key(candidate) > sort_key(bounds[-1]):
                bounds.append(candidate)
        parts.extend(_ranges(SPLITTABLE[rank], bounds))
    split = [{"_id": {"$type": SPLITTABLE[rank]}} for rank in sorted(by_rank)]
    parts.append(VerifyPartition({"$nor": split}, "other _id types"))
    return parts


async def plan_partitions(
    source: ReadOnlyCollection, count: int
) -> tuple[list[VerifyPartition], str]:
    """Partitions for `count`-way parallel reading, and how they were found."""
    if count <= 1:
        return [VerifyPartition()], "single partition requested"
    try:
        seeks = await PartitionPlanner(source).can_seek()
    except PyMongoError:  # a throttled or failed explain: plan as before, from the sample
        seeks = True
    if not seeks:
        # Each range would be read by a full scan (and sorted): one partition reads it once,
        # unsorted, as the server stores it.
        return [VerifyPartition(label="natural order", natural=True)], (
            "single partition in natural order: the source cannot seek _id ranges")
    size = count * SAMPLES_PER_PARTITION
    try:
        cursor = await source.raw.aggregate(
            [{"$sample": {"size": size}}, {"$project": {"_id": 1}}], batchSize=10_000
        )
        sampled = [document_id(doc.raw) async for doc in cursor]
    except OperationFailure as exc:
        return [VerifyPartition()], (
            f"single partition: the source has no $sample ({exc.code})"
        )
    return partitions_from_sample(sampled, count), f"$sample of {len(sampled)} _ids"


async def uncovered_id_groups(given: Sequence[Any], source: ReadOnlyCollection,
                              target: Any) -> list[VerifyPartition]:
    """Partitions for the `_id` type groups that the migration's plan (made from the source)
    does not cover but that either side holds now.

    A plan covers the groups the source had when it was made. Documents on the target whose
    `_id` type the source lacks (a stray write, another run's output, a transform that turns
    ObjectIds into strings or sub-documents) would otherwise never be read, and the target
    would pass as equal. Each probe is one indexed `find_one` per side and group. Partitions
    that are not the engine's (`VerifyPartition`, filters) must cover the collection already.
    """
    groups = set()
    for part in given:
        group = getattr(part, "group", None)
        if group is None or group in (ALL, NATURAL):
            return []  # the caller's own partitions, or one reading the whole collection
        groups.add(group)
    added: list[VerifyPartition] = []
    for group in (*RANGE_GROUPS, OTHER):
        if group in groups:
            continue
        condition = {"_id": Partition(0, group).id_filter()}
        for side in (target, source):
            if await side.find_one(condition, projection={"_id": 1}) is not None:
                added.append(VerifyPartition(condition, f"{group} _ids (not in the plan)"))
                break
    return added
