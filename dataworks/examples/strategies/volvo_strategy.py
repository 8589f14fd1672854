"""Volvo service orders: Cosmos DB schema v1 -> Atlas schema v2.

What changes on the way (and why):
- Money becomes integer cents (`totals.*Cents`, `parts[].unitPriceCents`, `lineTotalCents`):
  the source stored doubles, which drift when summed in reports.
- The customer's e-mail and phone are pseudonymised (`emailHash`, `phoneLast4`): the target is
  an analytics cluster that must not hold direct contact data.
- `dealer.workshop` moves up to `workshop` and gains `dealerId`, so workshop dashboards need no
  `$lookup` into the dealer sub-document.
- Summary fields the app used to compute on every read: `jobCount`, `partCount`,
  `labourHours` per order.
- `schemaVersion: 2` and `migratedFrom: "cosmos"` mark converted documents.

`_id` is kept, so resume and verification by `_id` work unchanged (the transform is
deterministic: the same source document always gives the same target document).

Run it:  dataworks migrate --strategy user_defined/strategies/volvo_strategy.py
"""

from __future__ import annotations

import hashlib
from typing import Any

from dataworks import BaseMigrationStrategy


def to_cents(amount: float | int | None) -> int | None:
    return None if amount is None else int(round(amount * 100))


class VolvoServiceOrderStrategy(BaseMigrationStrategy):
    name = "volvo-service-orders-v2"

    def transform(self, doc: dict[str, Any]) -> dict[str, Any]:
        customer = doc.get("customer") or {}
        email = customer.pop("email", None)
        phone = customer.pop("phone", None)
        if email:
            customer["emailHash"] = hashlib.sha256(email.lower().encode()).hexdigest()
        if phone:
            customer["phoneLast4"] = phone.replace(" ", "")[-4:]

        dealer = doc.get("dealer") or {}
        workshop = dealer.pop("workshop", None)
        if workshop is not None:
            doc["workshop"] = {**workshop, "dealerId": dealer.get("dealerId")}

        part_count = 0
        for job in doc.get("jobs") or []:
            for part in job.get("parts") or []:
                part["unitPriceCents"] = to_cents(part.pop("unitPrice", None))
                part["lineTotalCents"] = to_cents(part.pop("lineTotal", None))
                part_count += 1

        totals = doc.get("totals") or {}
        for key in ("labourAmount", "partsAmount", "discount", "tax", "total"):
            if key in totals:
                totals[f"{key}Cents"] = to_cents(totals.pop(key))
        if "labourRate" in totals:
            totals["labourRateCents"] = to_cents(totals.pop("labourRate"))

        doc["jobCount"] = len(doc.get("jobs") or [])
        doc["partCount"] = part_count
        doc["schemaVersion"] = 2
        doc["migratedFrom"] = "cosmos"
        return doc
