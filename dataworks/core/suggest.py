""""did you mean volvo?": the closest existing database or collection for a name that is not
there, so a typo costs one glance instead of a hunt through `show dbs`."""

from __future__ import annotations

import difflib
from typing import Any

from dataworks.core.clients import Endpoint
from dataworks.errors import UserError

_HIDDEN_DBS = {"admin", "local", "config", "dataworks_meta"}


def closest(name: str, candidates: list[str]) -> str | None:
    """The candidate most like `name` (case-insensitive), if any is reasonably close."""
    lowered = {c.lower(): c for c in candidates}
    match = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[match[0]] if match else None


async def missing_collection(client: Any, endpoint: Endpoint, *, side: str) -> UserError:
    """The error for a `side` collection that does not exist, naming the closest existing
    database (when the database is missing) or collection (when only the collection is), and
    what to check: the flag the user passed for the missing name, else its setting."""
    what = f"{side} collection {endpoint.namespace} does not exist"
    databases = [d for d in await client.list_database_names() if d not in _HIDDEN_DBS]
    names = await client[endpoint.db].list_collection_names() if endpoint.db in databases else []
    # A database without collections does not exist for MongoDB; some servers (mongo-java-server)
    # list one that was merely read from, as this run's own count just did.
    if not names:
        near = closest(endpoint.db, [d for d in databases if d != endpoint.db])
        why = f"no database {endpoint.db}" + (f"; did you mean {near}?" if near else "")
        check = endpoint.names.db
    else:
        near = closest(endpoint.collection, [n for n in names if not n.startswith("system.")])
        why = f"did you mean {near}?" if near else f"{endpoint.db} has no such collection"
        check = endpoint.names.collection
    return UserError(f"{what} ({why})", hint=f"check {check} (on {endpoint.host_key()})")
