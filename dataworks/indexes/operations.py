"""Read, compare and create indexes against live collections.

Each index is created with its own `createIndexes` command: one definition a target rejects
(FerretDB and older servers refuse some options) must not stop the others, and a build
interrupted between two indexes resumes at the next one (see `deferred.py`). Throttling and
transient errors are retried with the project's retry policy; a rejection is reported with
the server's message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pymongo import IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import OperationFailure

from dataworks.core.clients import ReadOnlyCollection
from dataworks.core.retry import RetryPolicy, with_retries
from dataworks.indexes.build_progress import watching_build
from dataworks.indexes.compare import IndexComparison, diff_indexes
from dataworks.indexes.spec import IndexPlan, IndexSpec, SkippedIndex, normalize, plan_indexes
from dataworks.monitoring.metrics import phase_step


@dataclass
class IndexCopyReport:
    """What `copy_indexes` / `build_pending_indexes` did, index by index."""

    created: list[str] = field(default_factory=list)
    already_present: list[str] = field(default_factory=list)
    skipped: list[SkippedIndex] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # name -> server message
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "created": list(self.created),
            "already_present": list(self.already_present),
            "skipped": [{"name": s.name, "reason": s.reason} for s in self.skipped],
            "failed": dict(self.failed),
            "notes": list(self.notes),
        }


async def list_target_indexes(target: AsyncCollection[Any]) -> list[dict[str, Any]]:
    """The target's listing; a collection that does not exist yet has no indexes."""
    try:
        cursor = await target.list_indexes()
        return [dict(index) async for index in cursor]
    except OperationFailure as exc:
        if exc.code == 26:  # NamespaceNotFound
            return []
        raise


async def read_source_plan(
    source: ReadOnlyCollection, *, ts_field: str | None = None
) -> IndexPlan:
    """The source's indexes, translated for the target."""
    return plan_indexes(await source.list_indexes(), ts_field=ts_field)


async def compare_indexes(
    source: ReadOnlyCollection,
    target: AsyncCollection[Any],
    *,
    ts_field: str | None = None,
) -> IndexComparison:
    """Source indexes (translated) against the target's: missing, extra, different, skipped."""
    plan = await read_source_plan(source, ts_field=ts_field)
    return diff_indexes(
        plan,
        await list_target_indexes(target),
        source_namespace=source.full_name,
        target_namespace=target.full_name,
    )


def server_message(exc: BaseException) -> str:
    """The server's own words, without PyMongo's `full error` dump."""
    if isinstance(exc, OperationFailure):
        details = exc.details or {}
        message = str(details.get("errmsg") or exc)
        return f"{message} (code {exc.code})" if exc.code is not None else message
    return str(exc)


async def create_index(
    target: AsyncCollection[Any], spec: IndexSpec, *, policy: RetryPolicy | None = None
) -> None:
    model = IndexModel(list(spec.key), name=spec.name, **dict(spec.options))
    await with_retries(
        lambda: target.create_indexes([model]),
        policy or RetryPolicy(),
        what=f"creating index {spec.name} on {target.full_name}",
    )


async def create_specs(
    target: AsyncCollection[Any],
    specs: list[IndexSpec],
    report: IndexCopyReport,
    *,
    policy: RetryPolicy | None = None,
    on_built: Callable[[IndexSpec], Any] | None = None,
) -> None:
    """Create what is not already on the target; record each outcome in `report`."""
    existing = [normalize(i)[0] for i in await list_target_indexes(target)]
    for number, spec in enumerate(specs, 1):
        present = next((e for e in existing if e.name == spec.name), None)
        if present is not None and present.same_definition(spec):
            report.already_present.append(spec.name)
        elif present is not None:
            report.failed[spec.name] = (
                f"the target has an index named {spec.name} with another definition "
                f"({present.key_text()} {present.options_text()}); drop it or rename it"
            )
            continue
        else:
            phase_step(f"{spec.name} ({number}/{len(specs)})")
            try:
                async with watching_build(target, spec.name):
                    await create_index(target, spec, policy=policy)
            except OperationFailure as exc:
                report.failed[spec.name] = server_message(exc)
                continue
            report.created.append(spec.name)
        if on_built is not None:
            result = on_built(spec)
            if hasattr(result, "__await__"):
                await result


async def copy_indexes(
    source: ReadOnlyCollection,
    target: AsyncCollection[Any],
    *,
    ts_field: str | None = None,
    policy: RetryPolicy | None = None,
) -> IndexCopyReport:
    """Create the source's (translated) indexes on the target; report skips and failures."""
    plan = await read_source_plan(source, ts_field=ts_field)
    report = IndexCopyReport(skipped=list(plan.skipped), notes=list(plan.notes))
    await create_specs(target, plan.specs, report, policy=policy)
    return report


def specs_from_documents(documents: list[Mapping[str, Any]]) -> list[IndexSpec]:
    return [IndexSpec.from_document(d) for d in documents]
