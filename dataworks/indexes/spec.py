"""Index definitions as plain values, and the translation from what a source lists to what a
target should be asked to build.

Why a translation step: `listIndexes` on Cosmos DB for MongoDB returns system indexes
(`DocumentDBDefaultIndex` on the 3.2 API), indexes on its internal `_ts` field (the only
place it allows TTL; `_ts` is not readable by clients, so copied documents do not have it),
and bookkeeping fields (`v`, `ns`, `background`) that a target either ignores or rejects.
Everything that is left out is reported with its reason, never dropped silently.

Pure functions only: no I/O here, so the rules are unit-tested on recorded listings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bson import Decimal128, Int64

#: Options `createIndexes` accepts on MongoDB (Atlas) and that change what the index is.
KEPT_OPTIONS = frozenset(
    {
        "unique",
        "sparse",
        "partialFilterExpression",
        "expireAfterSeconds",
        "collation",
        "wildcardProjection",
        "weights",
        "default_language",
        "language_override",
        "textIndexVersion",
        "2dsphereIndexVersion",
        "bits",
        "min",
        "max",
        "hidden",
    }
)
#: Fields a listing carries that are not part of the definition (dropped without a note).
BOOKKEEPING = frozenset({"v", "ns", "key", "name", "background", "dropDups", "safe"})
#: Options whose `false` value is the default, so `false` and absent mean the same index.
FALSE_IS_DEFAULT = frozenset({"unique", "sparse", "hidden"})
#: Index-format versions each server fills in on its own; ignored when comparing.
SERVER_FILLED = frozenset({"textIndexVersion", "2dsphereIndexVersion"})
#: Text-index defaults a server lists though nobody asked for them; equal to absent.
TEXT_DEFAULTS = {"default_language": "english", "language_override": "language"}

COSMOS_TS_FIELD = "_ts"
ID_INDEX_NAME = "_id_"


@dataclass(frozen=True)
class IndexSpec:
    """One index as a target should build it: ordered key, name and defining options."""

    name: str
    key: tuple[tuple[str, Any], ...]
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_id_index(self) -> bool:
        return self.name == ID_INDEX_NAME or self.key == (("_id", 1),)

    def key_text(self) -> str:
        return ", ".join(f"{f}: {d}" for f, d in self.key)

    def options_text(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in sorted(self.options.items()))

    def to_document(self) -> dict[str, Any]:
        """The `createIndexes` entry (also how pending builds are stored)."""
        return {"key": dict(self.key), "name": self.name, **dict(self.options)}

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> IndexSpec:
        return normalize(doc)[0]

    def same_definition(self, other: IndexSpec) -> bool:
        return self.key == other.key and comparable_options(self) == comparable_options(other)


@dataclass(frozen=True)
class SkippedIndex:
    """A source index not built on the target, and why."""

    name: str
    key: tuple[tuple[str, Any], ...]
    reason: str


@dataclass
class IndexPlan:
    """What to build from one source listing: specs, skips, and options dropped from specs."""

    specs: list[IndexSpec] = field(default_factory=list)
    skipped: list[SkippedIndex] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _direction(value: Any) -> Any:
    """1.0, Int64(1) and 1 are the same direction; Cosmos returns doubles at times."""
    if isinstance(value, Decimal128):
        value = value.to_decimal()
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float, Int64)) or hasattr(value, "as_integer_ratio"):
        number = float(value)
        return int(number) if number.is_integer() else number
    return value


def _option_value(name: str, value: Any) -> Any:
    if name == "expireAfterSeconds" and isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, Mapping):
        return {k: _option_value(k, v) for k, v in value.items()}
    return value


def normalize(listing: Mapping[str, Any]) -> tuple[IndexSpec, list[str]]:
    """A listed index as an `IndexSpec`, plus the names of options that were dropped."""
    raw_key = listing.get("key") or {}
    key = tuple((str(f), _direction(d)) for f, d in raw_key.items())
    options: dict[str, Any] = {}
    dropped: list[str] = []
    for name, value in listing.items():
        if name in BOOKKEEPING:
            continue
        if name not in KEPT_OPTIONS:
            dropped.append(name)
            continue
        if name in FALSE_IS_DEFAULT and value is False:
            continue
        options[name] = _option_value(name, value)
    return IndexSpec(str(listing.get("name") or _default_name(key)), key, options), dropped


def _default_name(key: tuple[tuple[str, Any], ...]) -> str:
    return "_".join(f"{f}_{d}" for f, d in key)


def comparable_options(spec: IndexSpec) -> dict[str, Any]:
    """Options that decide whether two indexes are the same (server-filled ones excluded;
    `weights` stay: they name a text index's fields, its key only says `_fts`)."""
    return {
        k: v
        for k, v in spec.options.items()
        if k not in SERVER_FILLED and TEXT_DEFAULTS.get(k, _NO_DEFAULT) != v
    }


_NO_DEFAULT = object()


def plan_indexes(
    listing: list[Mapping[str, Any]], *, ts_field: str | None = None
) -> IndexPlan:
    """Translate a source `listIndexes` result into what the target should build.

    `ts_field`: build indexes declared on Cosmos DB's `_ts` on this real field instead
    (for example a `updatedAt` date the documents carry); without it they are skipped.
    """
    plan = IndexPlan()
    for entry in listing:
        spec, dropped = normalize(entry)
        if spec.name.startswith("DocumentDBDefaultIndex"):
            plan.skipped.append(
                SkippedIndex(spec.name, spec.key, "Cosmos DB system index; the target "
                             "keeps its own _id index")
            )
            continue
        if spec.is_id_index:
            continue  # every collection has it; nothing to build
        if any(f == COSMOS_TS_FIELD for f, _ in spec.key):
            if ts_field is None:
                plan.skipped.append(
                    SkippedIndex(
                        spec.name,
                        spec.key,
                        "on Cosmos DB's internal _ts field, which clients cannot read, so "
                        "copied documents lack it; pass a real date field to build it on "
                        "(--ts-field)",
                    )
                )
                continue
            key = tuple((ts_field if f == COSMOS_TS_FIELD else f, d) for f, d in spec.key)
            new_name = spec.name.replace(COSMOS_TS_FIELD, ts_field)
            plan.notes.append(f"{spec.name}: built on {ts_field} instead of Cosmos _ts "
                              f"as {new_name}")
            spec = IndexSpec(new_name, key, spec.options)
        if dropped:
            plan.notes.append(
                f"{spec.name}: dropped option(s) {', '.join(sorted(dropped))} "
                "(not a MongoDB index option)"
            )
        plan.specs.append(spec)
    return plan
