"""The outcome of one verification, for people (first 100 `_id`s of each kind) and for
files (every `_id`, as relaxed extended JSON so types survive: ObjectId, dates, numbers)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from dataworks.verify.rawdocs import display_id

DISPLAY_LIMIT = 100


class VerifyMode(str, Enum):
    COUNT = "count"
    HASH = "hash"
    SAMPLE = "sample"


@dataclass
class VerifyReport:
    mode: VerifyMode
    source: str  # namespace
    target: str
    source_count: int | None = None  # documents counted (count) or read (hash, sample)
    target_count: int | None = None
    compared: int = 0  # documents compared byte for byte
    matched: int = 0
    missing_ids: list[Any] = field(default_factory=list)  # on the source, not the target
    extra_ids: list[Any] = field(default_factory=list)  # on the target, not the source
    changed_ids: list[Any] = field(default_factory=list)  # on both, different bytes
    # Differences beyond the listing limit, by kind ("missing", "extra", "changed"): counted,
    # not listed.
    unlisted: dict[str, int] = field(default_factory=dict)
    partitions: int = 0
    method: str = ""  # how partitions or the sample were found
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    request_units: float | None = None  # what the source's counts cost (Cosmos DB, metered)

    @property
    def equal(self) -> bool:
        if self.mode is VerifyMode.COUNT:
            return self.source_count == self.target_count
        return not (self.missing_count or self.extra_count or self.changed_count)

    @property
    def missing_count(self) -> int:
        return len(self.missing_ids) + self.unlisted.get("missing", 0)

    @property
    def extra_count(self) -> int:
        return len(self.extra_ids) + self.unlisted.get("extra", 0)

    @property
    def changed_count(self) -> int:
        return len(self.changed_ids) + self.unlisted.get("changed", 0)

    def to_dict(self, limit: int | None = None) -> dict[str, Any]:
        """JSON-ready; `limit` caps each `_id` list (None: all of them)."""

        def ids(values: list[Any]) -> list[Any]:
            shown = values if limit is None else values[:limit]
            return [json.loads(display_id(v)) for v in shown]

        return {
            "mode": self.mode.value,
            "equal": self.equal,
            "source": self.source,
            "target": self.target,
            "source_count": self.source_count,
            "target_count": self.target_count,
            "compared": self.compared,
            "matched": self.matched,
            "missing_count": self.missing_count,
            "extra_count": self.extra_count,
            "changed_count": self.changed_count,
            "unlisted": dict(self.unlisted),
            "missing_ids": ids(self.missing_ids),
            "extra_ids": ids(self.extra_ids),
            "changed_ids": ids(self.changed_ids),
            "partitions": self.partitions,
            "method": self.method,
            "seconds": round(self.seconds, 3),
            "notes": list(self.notes),
            "request_units": self.request_units,
        }

    def write_json(self, path: str | Path) -> None:
        """The full report (every `_id`), written where `--report` points."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
