"""Documents the target rejected (too large, failed validation, a clash on a unique index):
kept, never dropped silently.

One JSON line per document (MongoDB relaxed extended JSON, so any `_id` type survives):

    {"_id": ..., "code": 11000, "reason": "...", "index": "email_1", "key": {"email": "a@x"},
     "source_id": ...}

`index`/`key` are there for a clash on a unique index; `source_id` is the `_id` of the source
document the rejected one came from (it differs from `_id` when a transform changes `_id`s),
so `--retry-rejected` can read it again. The document body is not copied (it may be large
or sensitive); `source_id` finds it in the source.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bson import json_util

_NO_ID = object()


def _json(value: Any) -> Any:
    return json.loads(json_util.dumps(value))


def _id_of(document: Any) -> Any:
    try:
        return document["_id"]
    except (KeyError, TypeError):
        return None


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of a dead-letter (or kept-ids) file, `_id`s with their BSON types back."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json_util.loads(line) for line in lines if line.strip()]


class JsonLinesFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0  # added by this process

    def append(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        self.count += 1

    def total(self) -> int:
        """Records in the file, from this run and the earlier runs of the same migration."""
        return len(read_records(self.path))


class DeadLetterFile(JsonLinesFile):
    def add(self, document: Any, code: int | None, reason: str, *, index: str | None = None,
            key: Any = None, source_id: Any = _NO_ID) -> None:
        record: dict[str, Any] = {"_id": _json(_id_of(document)), "code": code, "reason": reason}
        if index is not None:
            record["index"] = index
            record["key"] = _json(key)
        if source_id is not _NO_ID:
            record["source_id"] = _json(source_id)
        self.append(record)


class KeptIdsFile(JsonLinesFile):
    """`_id`s of target documents kept although the source's differ (--keep-existing)."""

    def add(self, doc_id: Any) -> None:
        self.append({"_id": _json(doc_id)})
