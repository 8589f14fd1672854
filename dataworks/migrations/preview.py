"""`migrate --preview N`: run a strategy over N source documents and write nothing.

The documents are read through the read-only source collection with the strategy's own
query and projection (or its legacy `read_batch`), `on_start` runs first (it may load what
`transform` needs), and each document goes through the engine's `apply_transform`, so drop,
split and reshape behave exactly as in a real run. `on_finish` does not run: there is no
migration to summarise. The result holds, per source document, its outputs and a field by
field comparison; renderers (rich in the CLI, JSON for machines) only read it.
"""

from __future__ import annotations

import copy
import inspect
import traceback
from dataclasses import dataclass, field
from typing import Any, Literal

import bson
from bson import json_util

from dataworks.config.settings import Settings
from dataworks.core.clients import ReadOnlyCollection, connect
from dataworks.core.endpoints import source_endpoint, target_endpoint
from dataworks.core.suggest import missing_collection
from dataworks.errors import PluginError, SettingsError, UserError
from dataworks.migrations.loading import load_strategy
from dataworks.migrations.partitioning import PartitionPlanner
from dataworks.migrations.reader import apply_transform
from dataworks.migrations.strategy import BaseMigrationStrategy, StrategyContext
from dataworks.monitoring.metrics import RunMetrics

ChangeKind = Literal["same", "changed", "added", "removed"]
Outcome = Literal["unchanged", "changed", "dropped", "split"]
_MISSING: Any = object()


@dataclass(frozen=True)
class FieldChange:
    """One (dotted) field of a document before and after `transform`."""

    path: str
    kind: ChangeKind
    before: Any = None
    after: Any = None


@dataclass
class PreviewItem:
    before: dict[str, Any]
    after: list[dict[str, Any]]

    @property
    def outcome(self) -> Outcome:
        if not self.after:
            return "dropped"
        if len(self.after) > 1:
            return "split"
        changes = self.changes(0)
        return "unchanged" if all(c.kind == "same" for c in changes) else "changed"

    def changes(self, index: int) -> list[FieldChange]:
        """Field by field comparison of the source document with output `index`."""
        return compare(self.before, self.after[index])


@dataclass
class MigrationPreview:
    source: str  # masked URI and namespace
    strategy: str
    transforms: bool  # False: the strategy copies documents unchanged (raw fast path)
    items: list[PreviewItem] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = {"unchanged": 0, "changed": 0, "dropped": 0, "split": 0}
        for item in self.items:
            out[item.outcome] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "strategy": self.strategy,
            "transforms": self.transforms,
            "counts": self.counts(),
            "documents": [
                {
                    "outcome": item.outcome,
                    "before": item.before,
                    "after": item.after,
                    "changes": [
                        [
                            {"path": c.path, "change": c.kind,
                             **({"before": c.before} if c.kind in ("changed", "removed")
                                else {}),
                             **({"after": c.after} if c.kind in ("changed", "added") else {})}
                            for c in item.changes(i) if c.kind != "same"
                        ]
                        for i in range(len(item.after))
                    ],
                }
                for item in self.items
            ],
        }

    def to_json(self) -> str:
        """Relaxed extended JSON (types such as ObjectId and dates survive)."""
        return json_util.dumps(self.to_dict(), json_options=json_util.RELAXED_JSON_OPTIONS,
                               indent=2, ensure_ascii=False)


async def preview_migration(settings: Settings, count: int, *,
                            strategy: str | type[BaseMigrationStrategy] | None = None
                            ) -> MigrationPreview:
    """Read `count` source documents, transform them, and write nothing anywhere."""
    if count < 1:
        raise UserError(f"--preview needs a positive number of documents, not {count}")
    if isinstance(strategy, type):
        strategy_cls, ref = strategy, strategy.__name__
    else:
        strategy_cls, ref = load_strategy(strategy)
    endpoint = source_endpoint(settings)
    try:
        target_namespace = target_endpoint(settings).namespace
    except SettingsError:  # a preview needs no target
        target_namespace = endpoint.namespace
    client = connect(endpoint)
    try:
        source = ReadOnlyCollection(client[endpoint.db][endpoint.collection])
        if not await source.exists():
            raise await missing_collection(client, endpoint, side="source")
        instance = strategy_cls(StrategyContext(
            source=source, source_namespace=endpoint.namespace,
            target_namespace=target_namespace, batch_size=count,
        ))
        await instance.on_start()
        docs = await _read(instance, source, count)
    finally:
        await client.close()
    preview = MigrationPreview(endpoint.display(), ref, strategy_cls.transforms())
    metrics = RunMetrics()
    for doc in docs:
        before = copy.deepcopy(doc)
        try:
            outputs = (await apply_transform(instance.transform, [doc], metrics)
                       if strategy_cls.transforms() else [doc])
        except PluginError:  # the engine already said where (and why) it failed
            raise
        except Exception as exc:  # noqa: BLE001 - the user's code: say where it failed
            raise PluginError(
                f"{_where(exc, strategy_cls)}: transform raised {type(exc).__name__}: {exc} "
                f"(source document _id {before.get('_id')!r})",
                hint="a real migration would stop here; fix the strategy and preview again",
            ) from exc
        preview.items.append(PreviewItem(before, [dict(o) for o in outputs]))
    return preview


def _where(exc: BaseException, cls: type) -> str:
    """`file:line` of the deepest frame of the strategy's file in the traceback."""
    source = inspect.getsourcefile(cls) or "?"
    line = 0
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == source:
            line = frame.lineno or 0
    return f"{source}:{line}"


async def _read(strategy: BaseMigrationStrategy, source: ReadOnlyCollection,
                count: int) -> list[dict[str, Any]]:
    if strategy.reads_itself():
        docs = await strategy.read_batch(count, await strategy.get_resume_point())
        return [dict(d) for d in docs[:count]]
    query = strategy.build_query() or {}
    # The first N by `_id` where the index serves the sort; where it cannot (FerretDB), a
    # sorted find reads and sorts the whole collection first: take the first N as stored.
    seek = await PartitionPlanner(source, query).can_seek()
    cursor = source.find(query, strategy.projection(), limit=count,
                         batch_size=min(max(count, 1), 1000),
                         **({"sort": [("_id", 1)]} if seek else {}))
    return [doc async for doc in cursor]


def flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    """Nested documents as dotted paths; arrays and scalars are leaf values."""
    if not isinstance(doc, dict) or (prefix and not doc):
        return {prefix: doc}
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if key == "_id" and not prefix:  # an `_id` is one value, whatever its shape
            out["_id"] = value
            continue
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def compare(before: dict[str, Any], after: dict[str, Any]) -> list[FieldChange]:
    """Every dotted field of either side, in the order a reader expects (before's first)."""
    left, right = flatten(before), flatten(after)
    changes: list[FieldChange] = []
    for path in [*left, *(p for p in right if p not in left)]:
        a, b = left.get(path, _MISSING), right.get(path, _MISSING)
        if a is _MISSING:
            changes.append(FieldChange(path, "added", after=b))
        elif b is _MISSING:
            changes.append(FieldChange(path, "removed", before=a))
        elif _same(a, b):
            changes.append(FieldChange(path, "same", a, b))
        else:
            changes.append(FieldChange(path, "changed", a, b))
    return changes


def _same(a: Any, b: Any) -> bool:
    """Equal as BSON (so 1 and True, or 1 and 1.0, differ as they would in the database)."""
    try:
        return bson.encode({"v": a}) == bson.encode({"v": b})
    except Exception:  # noqa: BLE001 - not encodable: fall back to Python equality
        return bool(a == b) and type(a) is type(b)
