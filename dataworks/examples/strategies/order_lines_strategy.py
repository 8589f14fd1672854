"""Split each service order into an order header and one document per job, renaming fields.

A splitting and renaming strategy. For every source order, `transform` returns a list:
- one header: `{"_id": <source _id>, "kind": "order", "order_number": ..., ...}` with the
  camelCase fields renamed to snake_case and the jobs replaced by `job_count`;
- one line per job: `{"_id": {"order": <source _id>, "line": n}, "kind": "job_line", ...}`.

Every `_id` is derived from the source `_id` (and the job's position), so the same source
document always gives the same `_id`s: a resumed run re-sends a batch and the target
recognises its documents as already present, never twice. All outputs go to the one target
collection; to send headers and lines to two collections, subclass this strategy twice
(one keeping only `kind == "order"`, one only `"job_line"`) and run `migrate` once for each
with its own `--target-collection`.

    dataworks migrate --strategy user_defined/strategies/order_lines_strategy.py --preview 3
"""

from __future__ import annotations

import re
from typing import Any

from dataworks import BaseMigrationStrategy

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def snake(name: str) -> str:
    """`labourHours` -> `labour_hours`."""
    return _CAMEL.sub(r"_\1", name).lower()


def renamed(value: Any) -> Any:
    """Rename every key of a (nested) document to snake_case; lists are walked too."""
    if isinstance(value, dict):
        return {snake(k) if k != "_id" else k: renamed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [renamed(v) for v in value]
    return value


class OrderLinesStrategy(BaseMigrationStrategy):
    name = "service-order-lines"

    def transform(self, doc: dict[str, Any]) -> list[dict[str, Any]]:
        order_id = doc["_id"]
        jobs = doc.pop("jobs", None) or []
        header = renamed(doc)
        header["kind"] = "order"
        header["job_count"] = len(jobs)
        lines = [
            {
                "_id": {"order": order_id, "line": n},
                "kind": "job_line",
                "order_number": doc.get("orderNumber"),
                **renamed(job),
            }
            for n, job in enumerate(jobs, 1)
        ]
        return [header, *lines]
