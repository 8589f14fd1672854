"""Compare the indexes a source implies with those a target has.

Indexes are matched by key pattern (field order matters), preferring the same name; then the
defining options are compared. The `_id` index is left out on both sides: every collection
has one. Source indexes the translation skipped are listed with their reason but do not make
the comparison unequal: nothing could be built for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from dataworks.indexes.spec import IndexPlan, IndexSpec, comparable_options, normalize


class IndexStatus(str, Enum):
    SAME = "same"
    MISSING = "missing"  # in the source, not on the target
    EXTRA = "extra"  # on the target, not in the source
    DIFFERENT = "different"  # same key, other options or name
    SKIPPED = "skipped"  # not translatable; see detail


@dataclass(frozen=True)
class IndexDiff:
    status: IndexStatus
    name: str
    key: str
    detail: str = ""


@dataclass
class IndexComparison:
    source_namespace: str
    target_namespace: str
    rows: list[IndexDiff] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return all(r.status in (IndexStatus.SAME, IndexStatus.SKIPPED) for r in self.rows)

    def count(self, status: IndexStatus) -> int:
        return sum(1 for r in self.rows if r.status is status)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source_namespace,
            "target": self.target_namespace,
            "equal": self.equal,
            "indexes": [
                {"status": r.status.value, "name": r.name, "key": r.key, "detail": r.detail}
                for r in self.rows
            ],
            "notes": list(self.notes),
        }


def _option_differences(source: IndexSpec, target: IndexSpec) -> list[str]:
    ours, theirs = comparable_options(source), comparable_options(target)
    out = []
    for name in sorted(set(ours) | set(theirs)):
        if ours.get(name) != theirs.get(name):
            shown_s = ours.get(name, "absent")
            shown_t = theirs.get(name, "absent")
            out.append(f"{name}: source {shown_s}, target {shown_t}")
    return out


def diff_indexes(
    plan: IndexPlan,
    target_listing: list[Mapping[str, Any]],
    *,
    source_namespace: str = "",
    target_namespace: str = "",
) -> IndexComparison:
    """The comparison table for a translated source plan against a target listing."""
    targets = [normalize(t)[0] for t in target_listing]
    targets = [t for t in targets if not t.is_id_index]
    unmatched = list(targets)
    result = IndexComparison(source_namespace, target_namespace, notes=list(plan.notes))
    for spec in plan.specs:
        same_key = [t for t in unmatched if t.key == spec.key]
        match = next((t for t in same_key if t.name == spec.name), None)
        match = match or next((t for t in same_key if t.same_definition(spec)), None)
        match = match or (same_key[0] if same_key else None)
        if match is None:
            result.rows.append(IndexDiff(IndexStatus.MISSING, spec.name, spec.key_text(),
                                         spec.options_text()))
            continue
        unmatched.remove(match)
        problems = _option_differences(spec, match)
        if match.name != spec.name:
            problems.append(f"named {match.name} on the target")
        status = IndexStatus.DIFFERENT if problems else IndexStatus.SAME
        result.rows.append(
            IndexDiff(status, spec.name, spec.key_text(),
                      "; ".join(problems) if problems else spec.options_text())
        )
    for extra in unmatched:
        result.rows.append(IndexDiff(IndexStatus.EXTRA, extra.name, extra.key_text(),
                                     extra.options_text()))
    for skipped in plan.skipped:
        key = ", ".join(f"{f}: {d}" for f, d in skipped.key)
        result.rows.append(IndexDiff(IndexStatus.SKIPPED, skipped.name, key, skipped.reason))
    return result
