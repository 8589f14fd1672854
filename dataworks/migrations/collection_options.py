"""Collection options and views of a database run, copied from the source's `listCollections`.

Before the data: the target collection is created with the source's options (collation,
capped size, time-series, clusteredIndex, ...). After the data: the validator (applied
earlier it could reject the copy) and the views (they need their source collections).
Every option is read back from the target: what the target refused or silently dropped is
returned as a note for that collection, never lost without a word.
"""

from __future__ import annotations

import logging
from typing import Any

from pymongo.errors import OperationFailure, PyMongoError

log = logging.getLogger("dataworks.migrate")

NAMESPACE_EXISTS = 48
VALIDATION = ("validator", "validationLevel", "validationAction")
VIEW = ("viewOn", "pipeline")
# Describe the source's storage or its own encryption setup, not the collection's behaviour.
NOT_COPIED = ("encryptedFields", "storageEngine", "indexOptionDefaults")


def is_view(info: dict[str, Any]) -> bool:
    return info.get("type") == "view"


def creation_options(info: dict[str, Any]) -> dict[str, Any]:
    """The options given to `create` before the data."""
    options = dict(info.get("options") or {})
    return {k: v for k, v in options.items() if k not in VALIDATION + VIEW + NOT_COPIED}


def validation_options(info: dict[str, Any]) -> dict[str, Any]:
    options = info.get("options") or {}
    return {k: options[k] for k in VALIDATION if k in options}


async def collection_info(database: Any, name: str) -> dict[str, Any] | None:
    # The name is checked here too: mongo-java-server ignores listCollections' filter.
    async for info in await database.list_collections(filter={"name": name}):
        if info.get("name") == name:
            return dict(info)
    return None


async def create_like_source(database: Any, name: str, info: dict[str, Any]) -> list[str]:
    """Create `database[name]` with the source's options unless it exists; notes for what the
    target did not take."""
    wanted = creation_options(info)
    existing = await collection_info(database, name)
    if existing is not None:
        return _differences(wanted, existing, "the existing target collection")
    try:  # created even without options: an empty source collection exists on the target too
        await database.command({"create": name, **wanted})
    except OperationFailure as exc:
        if exc.code == NAMESPACE_EXISTS:  # created between our look and our create
            return _differences(wanted, await collection_info(database, name) or {},
                                "the existing target collection")
        if not wanted:
            raise
        log.warning("target refused the options of %s.%s: %s", database.name, name, exc)
        try:
            await database.command({"create": name})
        except OperationFailure:
            pass  # created by the first insert instead
        return [f"target refused the collection options {', '.join(sorted(wanted))}: "
                f"{_short(exc)}"]
    if not wanted:
        return []
    created = await collection_info(database, name) or {}
    return _differences(wanted, created, "the target")


async def apply_validation(database: Any, name: str, info: dict[str, Any]) -> list[str]:
    """After the data: the source's validator, validationLevel and validationAction."""
    wanted = validation_options(info)
    if not wanted:
        return []
    current = await collection_info(database, name) or {}
    if not _differences(wanted, current, ""):
        return []  # applied by an earlier run
    try:
        await database.command({"collMod": name, **wanted})
    except OperationFailure as exc:
        return [f"target refused the validator ({', '.join(wanted)}): {_short(exc)}"]
    return _differences(wanted, await collection_info(database, name) or {}, "the target")


async def create_view(database: Any, name: str, info: dict[str, Any], view_on: str) -> list[str]:
    """Recreate a view on the target over `view_on` (its source, renamed like the rest)."""
    options = info.get("options") or {}
    wanted = {"viewOn": view_on, "pipeline": list(options.get("pipeline") or [])}
    if "collation" in options:
        wanted["collation"] = options["collation"]
    existing = await collection_info(database, name)
    if existing is not None:
        if not is_view(existing):
            return [f"target has a collection named {name} where the source has a view"]
        return _differences(wanted, existing, "the existing target view")
    try:
        await database.command({"create": name, **wanted})
    except OperationFailure as exc:
        return [f"target cannot create the view (on {view_on}): {_short(exc)}"]
    return _differences(wanted, await collection_info(database, name) or {}, "the target")


def _differences(wanted: dict[str, Any], info: dict[str, Any], where: str) -> list[str]:
    have = info.get("options") or {}
    lost = [k for k, v in wanted.items() if k not in have or have[k] != v]
    if not lost:
        return []
    return [f"{where} does not have the source's {', '.join(lost)} "
            f"(source: {_brief({k: wanted[k] for k in lost})})"]


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _short(exc: PyMongoError) -> str:
    details = getattr(exc, "details", None) or {}
    message = details.get("errmsg") if isinstance(details, dict) else None
    return str(message or exc).split(", full error")[0][:300]
