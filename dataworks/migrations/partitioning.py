"""Split a source collection into `_id` ranges that cursors can read in parallel.

MongoDB compares values of different BSON types by type first ("type bracketing"): a query
`{_id: {$gt: ObjectId(...)}}` never matches a string `_id`. So ranges are cut *within* a
type group: each partition is `{_id: {$type: group, $gte: lower, $lt: upper}}`, and `_id`s
of types outside the known groups land in one catch-all partition.

Boundaries come from a random sample of `_id`s (`$sample`, which Cosmos DB and MongoDB
have; retried when throttled) or, where sampling is impossible, from the smallest and
largest `_id` of each type group and evenly spaced values between them (`interpolate`).
The plan is saved with the checkpoint, so a resumed run reads exactly the same ranges.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC
from typing import Any

from pymongo.errors import OperationFailure, PyMongoError

from dataworks.core.clients import ReadOnlyCollection
from dataworks.core.errors import classify
from dataworks.core.retry import OnRetry, RetryPolicy, with_retries
from dataworks.errors import RunFailed

log = logging.getLogger("dataworks.partitioning")

# Type groups in BSON comparison order. "number" covers int32, int64, double and decimal.
RANGE_GROUPS: tuple[str, ...] = ("number", "string", "object", "binData", "objectId", "date")
OTHER = "other"
# Groups whose server-side order is awkward to reproduce in Python (embedded documents,
# binary: length, then subtype, then bytes) are read as one range: always correct.
SINGLE_RANGE_GROUPS = frozenset({"object", "binData"})
ALL = "all"  # every _id, one cursor sorted by _id (checkpoints of earlier versions, legacy
# resume points)
NATURAL = "natural"  # every document, one unsorted cursor: for servers that cannot seek by
# _id range (resumed by position, see natural.py)
# BSON comparison order of types (MongoDB "Comparison/Sort Order"), as `$type` aliases.
# MinKey/MaxKey and the deprecated symbol type are left out: FerretDB rejects their aliases
# and no real collection uses them as `_id`.
TYPE_ORDER: tuple[tuple[str, ...], ...] = (
    ("null",), ("number",), ("string",), ("object",), ("array",),
    ("binData",), ("objectId",), ("bool",), ("date",), ("timestamp",), ("regex",),
)
SAMPLE_PER_PARTITION = 64
MAX_SAMPLE = 20_000
SAMPLE_RETRY_S = 60.0  # how long a throttled $sample is retried before probing instead


@dataclass(frozen=True)
class Partition:
    """One `_id` range of one type group; `lower` inclusive, `upper` exclusive, None = open."""

    index: int
    group: str
    lower: Any = None
    upper: Any = None

    def id_filter(self, after: Any = None) -> dict[str, Any]:
        """The `_id` condition for this range, optionally only after a high-water mark."""
        if self.group == OTHER:
            return {"$not": {"$type": list(RANGE_GROUPS)}}
        condition: dict[str, Any] = {"$type": self.group}
        if after is not None:
            condition["$gt"] = after
        elif self.lower is not None:
            condition["$gte"] = self.lower
        if self.upper is not None:
            condition["$lt"] = self.upper
        return condition

    def query(self, base: dict[str, Any] | None = None, after: Any = None) -> dict[str, Any]:
        if self.group == NATURAL:
            own = {}  # resumed by position, not by `_id`
        elif self.group == ALL:
            own = after_in_bson_order(after) if after is not None else {}
        elif self.group == OTHER and after is not None:
            own = {"$and": [{"_id": self.id_filter()}, after_in_bson_order(after)]}
        else:
            own = {"_id": self.id_filter(after)}
        if not own:
            return dict(base or {})
        if not base:
            return own
        return {"$and": [own, base]}

    def to_state(self) -> dict[str, Any]:
        return {"index": self.index, "group": self.group, "lower": self.lower, "upper": self.upper}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Partition:
        return cls(int(state["index"]), str(state["group"]), state.get("lower"), state.get("upper"))


class PartitionPlanner:
    """Finds partition boundaries for a source collection."""

    def __init__(self, source: ReadOnlyCollection, query: dict[str, Any] | None = None, *,
                 policy: RetryPolicy | None = None, on_retry: OnRetry | None = None) -> None:
        self.source = source
        self.query = query or {}
        self.policy = policy or RetryPolicy()
        self.on_retry = on_retry

    async def plan(self, count: int) -> list[Partition]:
        """About `count` partitions, spread over the type groups by their share of `_id`s."""
        if not await self._ranges_use_index():
            # Every range (or type-group) query would scan the whole collection: one cursor
            # reads it once instead, unsorted so that the first batch comes at once.
            log.info("the source cannot seek by _id range: reading it with one cursor "
                     "in natural order")
            return [Partition(0, NATURAL)]
        return await self.plan_ranges(count)

    async def plan_ranges(self, count: int) -> list[Partition]:
        """`_id` ranges per type group, whether or not the server can seek by range."""
        count = max(1, count)
        samples = await self._sample_ids(count)
        partitions: list[Partition] = []
        present = [g for g in RANGE_GROUPS if samples.get(g)]
        total_sampled = sum(len(samples[g]) for g in present) or 1
        for group in present:
            ids = sorted(samples[group], key=_sort_key(group))
            share = max(1, round(count * len(ids) / total_sampled)) if count > 1 else 1
            if group in SINGLE_RANGE_GROUPS:
                share = 1
            for lower, upper in _ranges(_boundaries(ids, share)):
                partitions.append(Partition(len(partitions), group, lower, upper))
        if await self._has_other_types():
            partitions.append(Partition(len(partitions), OTHER))
        if not partitions:  # empty source: one open partition per group keeps resume simple
            partitions = [Partition(i, g) for i, g in enumerate(RANGE_GROUPS)]
        return partitions

    async def can_seek(self) -> bool:
        """Whether an `_id` range (or an `_id` sort) is served by the index, not a scan."""
        return await self._ranges_use_index()

    async def _ranges_use_index(self) -> bool:
        """Ask the server's query planner whether an `_id` range query seeks or scans."""
        probe = {"_id": {"$gt": 0}}  # any value: only the plan's shape matters
        try:
            plan = await self.source.explain_find(probe, sort=[("_id", 1)])
        except PyMongoError as exc:
            if classify(exc).retryable:
                raise  # throttled or a blip: the caller retries the planning
            return True  # no explain (Cosmos DB may refuse it): `_id` is always indexed there
        if "filterPushdown" in plan:  # FerretDB
            return bool(plan["filterPushdown"])
        return "COLLSCAN" not in str(plan.get("queryPlanner", {}).get("winningPlan", ""))

    async def _sample_ids(self, count: int) -> dict[str, list[Any]]:
        """Sampled `_id`s by type group. A throttled or timed-out `$sample` (16500, 50) is
        retried with backoff; when sampling is impossible (no `$sample`, or still throttled
        after the retry budget) boundaries come from a few index probes instead, never from
        holding every `_id` in memory."""
        size = min(MAX_SAMPLE, SAMPLE_PER_PARTITION * count)
        pipeline: list[dict[str, Any]] = []
        if self.query:
            pipeline.append({"$match": self.query})
        pipeline += [{"$sample": {"size": size}}, {"$project": {"_id": 1}}]

        async def sample() -> list[Any]:
            cursor = await self.source.aggregate(pipeline, batchSize=10_000)
            return [doc["_id"] async for doc in cursor]

        # Sampling is optional (probes can replace it): give it a minute, not the run's budget.
        budget = replace(self.policy, max_seconds=min(SAMPLE_RETRY_S, self.policy.max_seconds))
        try:
            ids = await with_retries(sample, budget, what="sampling _ids ($sample)",
                                     on_retry=self.on_retry)
        except OperationFailure as exc:  # not retryable: the server has no $sample
            log.info("$sample unavailable (code %s); partition boundaries from _id probes",
                     exc.code)
            return await self._probe_boundaries(count)
        except RunFailed as exc:  # retryable, but still failing after the retry budget
            if self.on_retry is not None and exc.__cause__ is not None:
                self.on_retry(classify(exc.__cause__), 0, 0.0)  # the last answer counts too
            log.warning("$sample kept failing (%s); partition boundaries from _id probes",
                        exc)
            return await self._probe_boundaries(count)
        grouped: dict[str, list[Any]] = {}
        for value in ids:
            group = group_of(value)
            if group != OTHER:
                grouped.setdefault(group, []).append(value)
        return grouped

    async def _probe_boundaries(self, count: int) -> dict[str, list[Any]]:
        """Without a sample: per type group the smallest and largest `_id` (two index
        seeks), and evenly spaced values between them for types that can be interpolated
        (ObjectId by its timestamp, as Microsoft's migration tool does; numbers; dates).
        Other groups (strings, ...) become one range. Memory: a few values per group."""
        grouped: dict[str, list[Any]] = {}
        for group in RANGE_GROUPS:
            query: dict[str, Any] = {"_id": {"$type": group}}
            if self.query:
                query = {"$and": [query, self.query]}
            low = await self._edge(query, 1)
            if low is None:
                continue
            high = await self._edge(query, -1)
            grouped[group] = interpolate(low, high, count) if high is not None else [low]
        return grouped

    async def _edge(self, query: dict[str, Any], direction: int) -> Any:
        async def probe() -> Any:
            found = await self.source.find_one(query, {"_id": 1}, sort=[("_id", direction)])
            return None if found is None else found["_id"]

        return await with_retries(probe, self.policy, what="probing the _id range",
                                  on_retry=self.on_retry)

    async def _has_other_types(self) -> bool:
        found = await self.source.find_one(
            {"_id": {"$not": {"$type": list(RANGE_GROUPS)}}}, {"_id": 1}
        )
        return found is not None


def after_in_bson_order(after: Any) -> dict[str, Any]:
    """Every `_id` greater than `after` in the server's order: the same type and greater,
    or any type that sorts later (a plain `$gt` is type-bracketed and would miss those)."""
    position = _type_position(after)
    later = [alias for group in TYPE_ORDER[position + 1:] for alias in group]
    clauses: list[dict[str, Any]] = [{"_id": {"$gt": after}}]
    if later:
        clauses.append({"_id": {"$type": later}})
    return {"$or": clauses}


def _type_position(value: Any) -> int:
    from bson import MaxKey, MinKey, Regex, Timestamp

    if isinstance(value, MinKey):
        return -1
    if value is None:
        return 0
    if isinstance(value, bool):
        return 7
    if isinstance(value, Timestamp):
        return 9
    if isinstance(value, Regex):
        return 10
    if isinstance(value, MaxKey):
        return 11
    group = group_of(value)
    order = {"number": 1, "string": 2, "object": 3, "binData": 5, "objectId": 6, "date": 8}
    return order.get(group, 3)


def group_of(value: Any) -> str:
    """The type group of an `_id` value, matching the server's `$type` aliases."""
    from datetime import datetime

    from bson import Binary, Decimal128, Int64, ObjectId

    if isinstance(value, bool):
        return OTHER
    if isinstance(value, int | float | Int64 | Decimal128):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, ObjectId):
        return "objectId"
    if isinstance(value, datetime):
        return "date"
    if isinstance(value, bytes | Binary):
        return "binData"
    if isinstance(value, dict):
        return "object"
    return OTHER


def interpolate(low: Any, high: Any, count: int) -> list[Any]:
    """`low`, `high` and up to `count - 1` evenly spaced values between them, for ObjectIds
    (by their timestamp), numbers and dates; just the two ends for other types. The values
    serve as sample points for `_boundaries`: ranges stay correct whatever the data's real
    distribution, only less even."""
    from datetime import datetime

    from bson import Decimal128, Int64, ObjectId

    points: list[Any] = [low]
    parts = max(1, count)
    if isinstance(low, ObjectId) and isinstance(high, ObjectId):
        start, end = low.generation_time.timestamp(), high.generation_time.timestamp()
        points += [ObjectId.from_datetime(datetime.fromtimestamp(start + (end - start) * i
                                                                 / parts, tz=UTC))
                   for i in range(1, parts)]
    elif isinstance(low, datetime) and isinstance(high, datetime):
        points += [low + (high - low) * i / parts for i in range(1, parts)]
    elif group_of(low) == "number" and group_of(high) == "number":
        def number(value: Any) -> float:
            return float(value.to_decimal()) if isinstance(value, Decimal128) else float(value)

        a, b = number(low), number(high)
        whole = all(isinstance(v, int | Int64) for v in (low, high))
        for i in range(1, parts):
            value = a + (b - a) * i / parts
            points.append(int(value) if whole else value)
    points.append(high)
    return points


def _sort_key(group: str) -> Any:
    if group == "number":
        return lambda v: float(v.to_decimal()) if hasattr(v, "to_decimal") else float(v)
    if group in SINGLE_RANGE_GROUPS:
        return lambda v: 0  # not cut, order irrelevant
    return lambda v: v


def _boundaries(sorted_ids: list[Any], parts: int) -> list[Any]:
    """`parts - 1` cut points taken at even quantiles of the sorted sample, de-duplicated."""
    if parts <= 1 or len(sorted_ids) < 2:
        return []
    cuts: list[Any] = []
    for i in range(1, parts):
        value = sorted_ids[i * len(sorted_ids) // parts]
        if not cuts or value != cuts[-1]:
            cuts.append(value)
    return cuts


def _ranges(cuts: list[Any]) -> list[tuple[Any, Any]]:
    edges = [None, *cuts, None]
    return list(zip(edges[:-1], edges[1:], strict=True))
