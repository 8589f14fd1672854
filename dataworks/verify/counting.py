"""Count verification that a Cosmos DB source can afford: one bounded count per partition.

On Cosmos DB (RU) a `count` is an aggregate priced in request units and subject to the
60-second operation limit; over a whole large collection it can neither finish nor be
retried usefully. So the source is counted partition by partition (the migration's own
`_id` ranges), each count bounded by `maxTimeMS` below that limit, each retried on its own
when throttled or timed out (16500, 50), and, when a `CountMeter` is given, each charged
with `getLastRequestStatistics` on the connection that ran it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dataworks.core.retry import OnRetry, RetryPolicy, with_retries
from dataworks.monitoring.metrics import phase_progress, phase_step

COUNT_LIMIT_MS = 50_000  # below Cosmos DB's 60 s per operation, with room for the network

# (filter) -> (count, request units or None): a count run where its charge can be read
CountMeter = Callable[[dict[str, Any]], Awaitable[tuple[int, float | None]]]


@dataclass
class PartitionCounts:
    total: int = 0
    counts: int = 0  # count commands that answered
    request_units: float | None = None


def partition_filters(partitions: Sequence[Any], base: Mapping[str, Any] | None) -> list[dict]:
    """One filter per engine partition (`Partition.query`), or the whole query when the
    partitions cannot be told apart (one natural-order partition)."""
    filters = [dict(p.query(dict(base or {}))) for p in partitions if hasattr(p, "query")]
    return filters or [dict(base or {})]


async def count_by_partition(source: Any, filters: Sequence[dict[str, Any]], policy: RetryPolicy,
                             *, meter: CountMeter | None = None,
                             on_retry: OnRetry | None = None) -> PartitionCounts:
    result = PartitionCounts()
    # A count answers all at once: progress is per partition (the target's count runs
    # alongside), so the rate and ETA are partitions, not documents.
    phase_step("counting the source, partition by partition", total=len(filters),
               unit="partitions")
    for index, query in enumerate(filters):
        async def one(query: dict[str, Any] = query) -> tuple[int, float | None]:
            if meter is not None:
                return await meter(query)
            return await source.count_documents(query, maxTimeMS=COUNT_LIMIT_MS), None

        count, charge = await with_retries(one, policy, what=f"counting source partition "
                                           f"{index + 1} of {len(filters)}", on_retry=on_retry)
        result.total += count
        result.counts += 1
        phase_progress(1)
        if charge is not None:
            result.request_units = (result.request_units or 0.0) + charge
    return result
