"""Change events to target writes, for live migration (pure logic, no I/O).

Every event becomes a *whole-document* write: insert, replace and update (with
`fullDocument: updateLookup`) replace the target document by `_id` with upsert; a delete, or
an update whose full document is gone (deleted since), deletes it. Because each write sets
the whole document, replaying an event twice gives the same target, and within one batch only
the last event of each `_id` matters: `collapse` keeps that one, so one unordered `bulk_write`
per batch is exact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

UPSERT_EVENTS = frozenset({"insert", "replace", "update"})
DELETE_EVENTS = frozenset({"delete"})
# Events that end the stream for this collection: the migration cannot follow them.
ENDING_EVENTS = frozenset({"drop", "rename", "dropDatabase", "invalidate"})


class UnsupportedChange(ValueError):
    """An event a live migration cannot replay (the collection was dropped or renamed)."""


@dataclass(frozen=True)
class Change:
    """What one event asks of the target: `document` to upsert under `_id`, or None (delete)."""

    id: Any
    document: Mapping[str, Any] | None


def change_of(event: Mapping[str, Any]) -> Change:
    """The write one change event stands for. Cosmos DB's events carry no `operationType`
    (its required `$project` drops it): they are inserts, updates or replaces, all with the
    full document."""
    kind = event.get("operationType")
    if kind in ENDING_EVENTS:
        raise UnsupportedChange(f"the source collection saw a '{kind}' event")
    key = event.get("documentKey") or {}
    full = event.get("fullDocument")
    if kind in DELETE_EVENTS:
        return Change(key["_id"], None)
    if kind is not None and kind not in UPSERT_EVENTS:
        raise UnsupportedChange(f"unknown change event '{kind}'")
    doc_id = key["_id"] if "_id" in key else (full or {}).get("_id")
    # A full document must be the document: one without the `_id` is not an image of it
    # (mongo-java-server returns the update's own fields for a document deleted since), so it
    # counts as missing, i.e. deleted since the event.
    if full is None or "_id" not in full:
        return Change(doc_id, None)
    return Change(doc_id, full)


def collapse(changes: Sequence[Change]) -> list[Change]:
    """The last change of each `_id`, in the order of those last changes."""
    last: dict[Any, Change] = {}
    for change in changes:
        key = _hashable(change.id)
        last.pop(key, None)  # re-insert so dict order follows the latest change
        last[key] = change
    return list(last.values())


def _hashable(value: Any) -> Any:
    """A dict key for any `_id` (documents and lists are not hashable)."""
    try:
        hash(value)
        # 1, 1.0 and Int64(1) are one `_id` to the server; True is not 1.
        kind = "number" if isinstance(value, int | float) and not isinstance(value, bool) \
            else type(value).__name__
        return (kind, value)
    except TypeError:
        import bson

        return ("bson", bson.encode({"v": value}))
