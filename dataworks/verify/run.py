"""`verify()`: the one entry point for `dataworks verify` and `migrate --verify`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from dataworks.core.clients import ReadOnlyCollection
from dataworks.core.retry import RetryPolicy, with_retries
from dataworks.errors import UserError
from dataworks.migrations.partitioning import NATURAL
from dataworks.verify.counting import (
    COUNT_LIMIT_MS,
    CountMeter,
    count_by_partition,
    partition_filters,
)
from dataworks.verify.hashcompare import MAX_LISTED_IDS, Differences, Transform, hash_compare
from dataworks.verify.partitions import VerifyPartition, plan_partitions, uncovered_id_groups
from dataworks.verify.rawdocs import sort_key
from dataworks.verify.report import VerifyMode, VerifyReport
from dataworks.verify.sample import sample_compare


def as_verify_partition(part: Any) -> VerifyPartition:
    """Accept the migration engine's `Partition` (anything with `query()`) as well; its
    `natural` partition (a source that cannot seek `_id` ranges) is read in natural order."""
    if isinstance(part, VerifyPartition):
        return part
    if getattr(part, "group", None) == NATURAL and callable(getattr(part, "query", None)):
        return VerifyPartition(part.query(), "natural order", natural=True)
    if callable(getattr(part, "query", None)):
        return VerifyPartition(part.query(), f"{getattr(part, 'group', '')} "
                                             f"{getattr(part, 'index', '')}".strip())
    return VerifyPartition(dict(part))


def _sorted_ids(values: Any) -> list[Any]:
    return sorted(values, key=sort_key)


async def verify(
    source: ReadOnlyCollection,
    target: AsyncCollection[Any],
    mode: VerifyMode | str = VerifyMode.COUNT,
    *,
    sample_size: int = 1000,
    transform: Transform | None = None,
    partitions: int | Sequence[Any] | None = None,
    parallelism: int = 4,
    batch_size: int = 1000,
    seed: int | None = None,
    policy: RetryPolicy | None = None,
    source_query: Mapping[str, Any] | None = None,
    source_projection: Mapping[str, Any] | None = None,
    max_listed: int = MAX_LISTED_IDS,
    count_meter: CountMeter | None = None,
) -> VerifyReport:
    """Compare `source` (read only) with `target`.

    - count: document counts on both sides (a transform is not applied: see the note).
    - hash: every document, byte for byte, in `_id` order per partition, in parallel (one
      partition in natural order where the source cannot seek `_id` ranges).
    - sample: `sample_size` random source documents looked up on the target by `_id`.

    `transform(doc) -> doc | [docs] | None` (may be async) turns a decoded source document
    into what the target should hold; pass the migration strategy's `transform`.
    `partitions`: a number of `_id` ranges to read in parallel (default `parallelism`;
    found with `$sample`, one partition when the source lacks it), or ready-made partitions
    (`VerifyPartition`, filter dicts, or the engine's `Partition`s from its saved plan) that
    together cover the collection exactly once.
    `max_listed`: hash mode lists at most this many differences by `_id`; the rest are
    counted (`report.unlisted`), so a half-copied target does not fill memory.
    `count_meter`: count mode runs each source count through it (Cosmos DB: a dedicated
    connection that also reads the count's charge into `report.request_units`).
    """
    try:
        mode = VerifyMode(mode)
    except ValueError:
        raise UserError(f"unknown verify mode {mode!r}", hint="use count, hash or sample") from None
    if sample_size <= 0:
        raise UserError(f"--sample-size must be positive (got {sample_size})")
    started = time.monotonic()
    report = VerifyReport(mode, source.full_name, target.full_name)
    if mode is VerifyMode.COUNT:
        policy = policy or RetryPolicy()
        filters = partition_filters(partitions if isinstance(partitions, Sequence) else [],
                                    source_query)
        counted, report.target_count = await asyncio.gather(
            count_by_partition(source, filters, policy, meter=count_meter),
            with_retries(lambda: target.count_documents({}), policy, what="counting the target"),
        )
        report.source_count = counted.total
        report.request_units = counted.request_units
        report.partitions = counted.counts
        report.method = (f"count_documents per partition ({counted.counts}, each under "
                         f"{COUNT_LIMIT_MS // 1000} s)" if counted.counts > 1
                         else "count_documents")
        if transform is not None:
            report.notes.append(
                "count mode compares raw counts; a transform that drops or splits documents "
                "needs --mode hash or sample"
            )
    elif mode is VerifyMode.HASH:
        if partitions is None or isinstance(partitions, int):
            wanted = parallelism if partitions is None else partitions
            parts, report.method = await plan_partitions(source, wanted)
        else:
            parts = [as_verify_partition(p) for p in partitions]
            report.method = "partitions given by the caller"
            added = await uncovered_id_groups(partitions, source, target)
            if added:
                parts += added
                report.method += " + " + ", ".join(p.label for p in added)
        found = await hash_compare(
            source, target, parts, transform=transform, parallelism=parallelism,
            batch_size=batch_size, policy=policy, source_query=source_query,
            source_projection=source_projection, max_listed=max_listed,
        )
        report.partitions = len(parts)
        _fill_hash_report(report, found, max_listed)
    else:
        sampled = await sample_compare(
            source, target, sample_size, transform=transform, seed=seed, policy=policy,
            source_query=source_query, source_projection=source_projection,
        )
        report.method = sampled.method
        report.source_count = sampled.sampled
        report.compared, report.matched = sampled.compared, sampled.matched
        report.missing_ids = _sorted_ids(sampled.missing)
        report.changed_ids = _sorted_ids(sampled.changed)
    report.seconds = time.monotonic() - started
    return report


def _fill_hash_report(report: VerifyReport, found: Differences, max_listed: int) -> None:
    report.source_count, report.target_count = found.source_docs, found.target_docs
    report.compared, report.matched = found.compared, found.matched
    report.changed_ids = _sorted_ids(found.changed.values())
    report.notes.extend(found.notes)
    unlisted = dict(found.unlisted)
    if found.missing_equals_extra() and (found.missing or found.extra or unlisted.get(
            "missing") or unlisted.get("extra")):
        # Every document missing from its partition was found in another one (a transform
        # moved its `_id`), including those past the listing budget that `reconcile` could
        # not pair by `_id`: they are all there, byte for byte.
        paired = len(found.missing) + unlisted.pop("missing", 0)
        unlisted.pop("extra", None)
        report.compared += paired
        report.matched += paired
        report.notes.append(
            f"{paired:,} documents were read in different partitions on the two sides and "
            "matched by digest"
        )
    else:
        report.missing_ids = _sorted_ids(v for v, _ in found.missing.values())
        report.extra_ids = _sorted_ids(v for v, _ in found.extra.values())
    report.unlisted = unlisted
    if found.unlisted:
        report.notes.append(
            f"more than {max_listed:,} differences: the first {max_listed:,} are listed "
            "by _id, the others only counted"
        )
        if unlisted.get("missing") and unlisted.get("extra"):
            report.notes.append(
                "past the listing budget, documents missing in one partition and extra in "
                "another cannot be paired by _id: the missing and extra counts are upper "
                "bounds; the verdict DIFFERENT is exact"
            )
