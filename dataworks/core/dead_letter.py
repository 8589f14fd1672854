"""Documents the target rejected (too large, failed validation): kept, never dropped silently.

One JSON line per document: its `_id`, the server's code and reason. The document body is
not copied (it may be large or sensitive); the `_id` finds it in the source.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bson import json_util


class DeadLetterFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0

    def add(self, document: Any, code: int | None, reason: str) -> None:
        try:
            doc_id = document["_id"]
        except (KeyError, TypeError):
            doc_id = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {"_id": json.loads(json_util.dumps(doc_id)), "code": code, "reason": reason}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        self.count += 1
