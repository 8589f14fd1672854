"""Load without secondary indexes, build them after the data, and finish an interrupted build.

Inserting into a collection that maintains secondary indexes costs every index an update per
document; building each index once at the end is faster (mongorestore restores indexes after
data for the same reason). The list of indexes still to build is written to a checkpoint
store *before* anything is dropped, and shortened after each index is built, so a run that
stops at any point leaves a record the next run finishes from.

The record lives in any `CheckpointStore` (the migration's own store by default: on the
target cluster), under the key `pending-indexes:<target namespace>`, each index as
extended JSON text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bson import json_util
from pymongo.asynchronous.collection import AsyncCollection

from dataworks.checkpoints.store import CheckpointStore
from dataworks.core.clients import ReadOnlyCollection
from dataworks.core.retry import RetryPolicy
from dataworks.indexes.operations import (
    IndexCopyReport,
    create_specs,
    list_target_indexes,
    read_source_plan,
)
from dataworks.indexes.spec import IndexSpec, SkippedIndex, normalize

PENDING_FORMAT = 1


def pending_key(target: AsyncCollection[Any]) -> str:
    return f"pending-indexes:{target.full_name}"


@dataclass
class DeferredIndexes:
    """What `defer_indexes` decided: indexes to build after the load, and what it dropped."""

    pending: list[IndexSpec] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    skipped: list[SkippedIndex] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


async def load_pending(
    target: AsyncCollection[Any], store: CheckpointStore
) -> list[IndexSpec]:
    """Indexes a previous run deferred and has not built yet ([] when none)."""
    state = await store.load(pending_key(target))
    if not state:
        return []
    return [_spec_from_state(d) for d in state.get("indexes", [])]


async def _save_pending(
    target: AsyncCollection[Any], store: CheckpointStore, specs: list[IndexSpec]
) -> None:
    if not specs:
        await store.delete(pending_key(target))
        return
    await store.save(
        pending_key(target),
        {
            "format": PENDING_FORMAT,
            "kind": "pending-indexes",
            "target": target.full_name,
            "indexes": [_spec_to_state(s) for s in specs],
        },
    )


def _spec_to_state(spec: IndexSpec) -> str:
    """Canonical extended JSON text: index keys hold dots (`address.city`) and options hold
    `$` operators (`partialFilterExpression`), which some servers refuse as field names."""
    return json_util.dumps(spec.to_document(), json_options=json_util.CANONICAL_JSON_OPTIONS)


def _spec_from_state(text: str) -> IndexSpec:
    return IndexSpec.from_document(
        json_util.loads(text, json_options=json_util.CANONICAL_JSON_OPTIONS)
    )


def _merge(into: list[IndexSpec], more: list[IndexSpec]) -> list[IndexSpec]:
    names = {s.name for s in into}
    return into + [s for s in more if s.name not in names]


async def defer_indexes(
    source: ReadOnlyCollection | None,
    target: AsyncCollection[Any],
    store: CheckpointStore,
    *,
    ts_field: str | None = None,
) -> DeferredIndexes:
    """Before loading: record the indexes to build later and take secondary indexes off an
    empty target.

    Pending = what a previous run still had to build + the source's translated indexes (when
    `source` is given) + the target's own secondary indexes, dropped only while the target
    holds no document (on a half-loaded target from an interrupted run they were dropped
    then, or stay, because rebuilding them would cost more than it saves).
    """
    result = DeferredIndexes()
    pending = await load_pending(target, store)
    if source is not None:
        plan = await read_source_plan(source, ts_field=ts_field)
        pending = _merge(pending, plan.specs)
        result.skipped, result.notes = list(plan.skipped), list(plan.notes)
    existing = [normalize(i)[0] for i in await list_target_indexes(target)]
    secondary = [s for s in existing if not s.is_id_index]
    empty = await target.find_one({}, projection={"_id": 1}) is None
    if empty and secondary:
        pending = _merge(pending, secondary)
        await _save_pending(target, store, pending)  # recorded before anything is dropped
        for spec in secondary:
            await target.drop_index(spec.name)
            result.dropped.append(spec.name)
    elif secondary:
        present = {s.name for s in secondary}
        kept = [s.name for s in pending if s.name in present]
        if kept:
            result.notes.append(
                "target is not empty: kept its index(es) " + ", ".join(kept)
            )
    await _save_pending(target, store, pending)
    result.pending = pending
    return result


async def build_pending_indexes(
    target: AsyncCollection[Any],
    store: CheckpointStore,
    *,
    policy: RetryPolicy | None = None,
    on_built: Callable[[IndexSpec], Any] | None = None,
) -> IndexCopyReport:
    """After loading (or at the start of a run that finds a record): build every pending
    index, shortening the record after each one, and delete it when nothing is left.

    An index the target rejects is reported in `failed` and taken off the record (retrying
    it would fail the same way); an exception or cancellation leaves the rest recorded.
    """
    report = IndexCopyReport()
    remaining = await load_pending(target, store)
    if not remaining:
        return report

    async def done(spec: IndexSpec) -> None:
        remaining.remove(spec)
        await _save_pending(target, store, remaining)
        if on_built is not None:
            result = on_built(spec)
            if hasattr(result, "__await__"):
                await result

    await create_specs(target, list(remaining), report, policy=policy, on_built=done)
    failed = [s for s in remaining if s.name in report.failed]
    for spec in failed:
        remaining.remove(spec)
    await _save_pending(target, store, remaining)
    return report
