"""Migrate only the service orders still in the workshop, and quarantine broken ones.

A filtering strategy, in two layers:
- `build_query` keeps only open orders. The server applies it, so closed orders are never
  read or sent over the network: always filter here when a query can say it.
- `transform` drops (returns None) orders whose totals do not add up: a rule a query cannot
  express portably (Cosmos DB's `$expr` support is partial). Dropped documents are counted
  as "dropped" in the report.
- `projection` leaves out the free-text `notes`, which the new system does not keep.

`_id` is kept unchanged, so resume and `dataworks verify` work as for a plain copy.

    dataworks migrate --strategy user_defined/strategies/open_orders_strategy.py --preview 5
    dataworks migrate --strategy user_defined/strategies/open_orders_strategy.py
"""

from __future__ import annotations

from typing import Any

from dataworks import BaseMigrationStrategy

OPEN_STATUSES = ["OPEN", "SCHEDULED", "IN_PROGRESS", "WAITING_PARTS"]
TOLERANCE = 0.015  # money is stored as doubles in the source: allow rounding noise


def totals_add_up(totals: dict[str, Any]) -> bool:
    """labour + parts - discount + tax == total (within rounding)."""
    try:
        expected = (totals["labourAmount"] + totals["partsAmount"] - totals.get("discount", 0)
                    + totals.get("tax", 0))
        return abs(expected - totals["total"]) <= TOLERANCE
    except (KeyError, TypeError):
        return False


class OpenOrdersStrategy(BaseMigrationStrategy):
    name = "open-service-orders"

    def build_query(self) -> dict[str, Any]:
        return {"status": {"$in": OPEN_STATUSES}}

    def projection(self) -> dict[str, Any] | None:
        return {"notes": 0}

    def transform(self, doc: dict[str, Any]) -> dict[str, Any] | None:
        if not totals_add_up(doc.get("totals") or {}):
            return None  # dropped: counted in the report, never written
        return doc
