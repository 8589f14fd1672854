"""`migrate --repair`: re-copy the `_id`s a verification found missing or changed, from the
source through the strategy, and (only with --delete-extra) delete target documents the
source lacks. The engine verifies again afterwards.

The `_id`s come from the run's differences file (runs/<run_id>/differences.json, written by
its last verification) or a `dataworks verify --report` file (`--repair-from`); when neither
lists any `_id` (a count verification, or none yet), a hash verification finds them first.
A verification lists at most 200,000 differences: past that, one repair fixes the listed
ones and the next verification lists the rest.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bson import json_util
from bson.raw_bson import RawBSONDocument
from pymongo import ReplaceOne
from pymongo.errors import BulkWriteError

from dataworks.core.clients import ReadOnlyCollection
from dataworks.core.retry import RetryPolicy, with_retries
from dataworks.errors import UserError
from dataworks.migrations.finishing import FinishingOptions
from dataworks.migrations.report import MigrationReport
from dataworks.migrations.strategy import BaseMigrationStrategy
from dataworks.monitoring.logs import event
from dataworks.verify import verify
from dataworks.verify.hashcompare import expected_documents
from dataworks.verify.rawdocs import document_id, id_key, split_documents

log = logging.getLogger("dataworks.migrate")
CHUNK = 500


@dataclass
class Listing:
    """What to repair: `_id`s as the target holds them."""

    recopy: list[Any]  # missing or changed
    extra: list[Any]


@dataclass
class RepairOutcome:
    listed: int = 0  # missing + changed `_id`s asked for
    recopied: int = 0  # documents written to the target (a transform may write several)
    not_on_source: int = 0  # listed `_id`s the source no longer has by that `_id`
    failed: int = 0  # writes the target refused (a unique index, validation)
    extra: int = 0
    deleted: int = 0
    kept_extra: int = 0  # extra documents left in place (no --delete-extra, or now on source)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def read_listing(path: Path) -> tuple[Listing, bool]:
    """The `_id`s of a verify report (relaxed extended JSON, types restored) and whether it
    said EQUAL."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the differences file {path}: {exc}",
                        hint="pass a file written by `dataworks verify --report`") from None
    if not isinstance(data, dict) or not any(
            k in data for k in ("missing_ids", "changed_ids", "extra_ids")):
        raise UserError(f"{path} is not a verification report",
                        hint="pass a file written by `dataworks verify --report`")

    def ids(key: str) -> list[Any]:
        return [json_util.loads(json.dumps(v)) for v in data.get(key) or []]

    return (Listing(ids("missing_ids") + ids("changed_ids"), ids("extra_ids")),
            bool(data.get("equal")))


async def repair_run(source: ReadOnlyCollection, target: Any,
                     strategy: BaseMigrationStrategy, finishing: FinishingOptions,
                     report: MigrationReport, partitions: list[Any], query: dict[str, Any],
                     projection: dict[str, Any] | None, policy: RetryPolicy, *,
                     listed: Path, given: bool, delete_extra: bool) -> dict[str, int]:
    """`listed`: the differences file to read (`given`: named by the user, so it must
    exist)."""
    transform = strategy.transform if strategy.transforms() else None
    if given and not listed.exists():
        raise UserError(f"--repair-from: {listed} does not exist",
                        hint="pass a file written by `dataworks verify --report`")
    listing, equal = (read_listing(listed) if listed.exists() else (Listing([], []), False))
    if not listing.recopy and not listing.extra and not equal:
        found = await verify(source, target, "hash", transform=transform,
                             partitions=partitions or None, parallelism=finishing.parallelism,
                             policy=policy, source_query=query or None,
                             source_projection=projection)
        listing = Listing([*found.missing_ids, *found.changed_ids], list(found.extra_ids))
    outcome = RepairOutcome(listed=len(listing.recopy), extra=len(listing.extra))
    for start in range(0, len(listing.recopy), CHUNK):
        await _recopy(source, target, listing.recopy[start:start + CHUNK], transform, query,
                      projection, policy, outcome)
    for start in range(0, len(listing.extra), CHUNK):
        await _remove_extra(source, target, listing.extra[start:start + CHUNK], query,
                            delete_extra, policy, outcome)
    _explain(outcome, report)
    event(log, "repaired", f"repair: {outcome.recopied:,} re-copied, {outcome.deleted:,} "
          "deleted", **outcome.to_dict())
    return outcome.to_dict()


def _narrowed(query: dict[str, Any], ids: list[Any]) -> dict[str, Any]:
    by_id = {"_id": {"$in": ids}}
    return {"$and": [query, by_id]} if query else by_id


async def _recopy(source: ReadOnlyCollection, target: Any, ids: list[Any], transform: Any,
                  query: dict[str, Any], projection: dict[str, Any] | None,
                  policy: RetryPolicy, outcome: RepairOutcome) -> None:
    options = {"projection": dict(projection)} if projection else {}

    async def read() -> list[bytes]:
        found: list[bytes] = []
        async for batch in source.find_raw_batches(_narrowed(query, ids), **options):
            found.extend(split_documents(batch))
        return found

    documents = await with_retries(read, policy, what="reading the source for a repair")
    seen = {id_key(document_id(d)) for d in documents}
    outcome.not_on_source += sum(1 for v in ids if id_key(v) not in seen)
    writes = []
    for document in documents:
        for out in await expected_documents(document, transform):
            writes.append(ReplaceOne({"_id": document_id(out)}, RawBSONDocument(out),
                                     upsert=True))
    if not writes:
        return
    try:  # replace by `_id`, inserting where missing: running it twice changes nothing
        await with_retries(lambda: target.bulk_write(writes, ordered=False), policy,
                           what="re-copying documents")
        outcome.recopied += len(writes)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        outcome.failed += len(errors)
        outcome.recopied += len(writes) - len(errors)
        if errors:
            log.warning("repair: the target refused %d document(s), first: %s", len(errors),
                        errors[0].get("errmsg"))


async def _remove_extra(source: ReadOnlyCollection, target: Any, ids: list[Any],
                        query: dict[str, Any], delete_extra: bool, policy: RetryPolicy,
                        outcome: RepairOutcome) -> None:
    if not delete_extra:
        outcome.kept_extra += len(ids)
        return

    async def on_source() -> set[Any]:
        found = set()
        async for batch in source.find_raw_batches(_narrowed(query, ids),
                                                    projection={"_id": 1}):
            found.update(id_key(document_id(d)) for d in split_documents(batch))
        return found

    # Never delete what the source holds by the same `_id` now (it changed since verifying).
    present = await with_retries(on_source, policy, what="checking extra documents")
    doomed = [v for v in ids if id_key(v) not in present]
    outcome.kept_extra += len(ids) - len(doomed)
    if doomed:
        result = await with_retries(lambda: target.delete_many({"_id": {"$in": doomed}}),
                                    policy, what="deleting extra documents")
        outcome.deleted += result.deleted_count


def _explain(outcome: RepairOutcome, report: MigrationReport) -> None:
    if outcome.not_on_source:
        report.warnings.append(
            f"repair: {outcome.not_on_source:,} listed _id(s) are not on the source by that "
            "_id (deleted since, or made by a transform that changes _ids): not re-copied; "
            "--force-from-start re-copies everything"
        )
    if outcome.failed:
        report.warnings.append(f"repair: the target refused {outcome.failed:,} document(s) "
                               "(see the log for the first reason)")
    if outcome.kept_extra and not outcome.deleted:
        report.warnings.append(
            f"repair: {outcome.kept_extra:,} extra document(s) on the target kept; "
            "--delete-extra deletes those the source does not hold"
        )
