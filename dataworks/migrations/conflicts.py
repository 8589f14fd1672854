"""Duplicate keys, classified where writes are answered (the copy, retries and repairs alike).

A duplicate-key error (11000) on insert means one of three things, and each is booked apart:

- the same document is already on the target (an earlier attempt wrote it): "already present";
- a different document holds the same `_id` (an old copy, another run's output): the caller
  replaces it ("replaced") or, with --keep-existing, keeps it ("kept (different)");
- the clash is on another unique index: the document cannot go in as it is; it is rejected
  with the index name and the clashing key.

"Same" is decided by bytes: the target's documents for the clashing `_id`s are fetched in one
`$in` query as raw BSON and compared with what was to be written. Servers differ in how they
name the clashing index (MongoDB gives `keyPattern`/`keyValue`, FerretDB only "E11000
duplicate key error"), so when the error does not say, the target is asked: an `_id` found
there means an `_id` clash, otherwise each unique index is probed with the document's key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import bson
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.raw_bson import RawBSONDocument

from dataworks.core.clients import RAW_CODEC

_INDEX_IN_MESSAGE = re.compile(r"index: (\S+) dup key")
UNKNOWN_INDEX = "(a unique index the server did not name)"


@dataclass
class Clash:
    """A duplicate key on an index other than `_id`."""

    position: int  # in the batch
    index: str  # "" or UNKNOWN_INDEX until `complete` finds it
    key: Any  # {field: value} of the clashing key, when known


@dataclass
class Conflicts:
    same: list[int] = field(default_factory=list)  # positions already on the target as sent
    different: list[int] = field(default_factory=list)  # a different document, same `_id`
    clashes: list[Clash] = field(default_factory=list)


def document_bytes(document: Any) -> bytes:
    """The BSON the target was sent for `document`."""
    if isinstance(document, RawBSONDocument):
        return bytes(document.raw)
    return bson.encode(document)


def id_key(value: Any) -> Any:
    """A lookup key for an `_id` that matches the way the server compares them: 1, 1.0 and
    Int64(1) are the same `_id` there (while True is not 1)."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float | Int64):
        return ("number", value)
    if isinstance(value, Decimal128):
        return ("number", value.to_decimal())
    return bson.encode({"k": value})


def described_clash(error: dict[str, Any]) -> tuple[bool | None, str | None, Any]:
    """(on `_id`?, index name, key) as far as the server's write error says; None = unknown."""
    pattern = error.get("keyPattern")
    match = _INDEX_IN_MESSAGE.search(str(error.get("errmsg", "")))
    name = match.group(1) if match else None
    if isinstance(pattern, dict) and pattern:
        on_id = list(pattern) == ["_id"]
        name = name or "_".join(f"{k}_{v}" for k, v in pattern.items())
    elif name is not None:
        on_id = name == "_id_"
    else:
        on_id = None
    return on_id, name, error.get("keyValue")


class ConflictClassifier:
    def __init__(self, target: Any) -> None:
        self.target = target.with_options(codec_options=RAW_CODEC)
        self._unique: list[tuple[str, list[str]]] | None = None

    async def classify(self, documents: list[Any], errors: dict[int, dict[str, Any]]) -> Conflicts:
        """Sort the duplicate-key errors of a batch (`position -> write error`)."""
        out = Conflicts()
        by_id: list[tuple[int, bool | None]] = []
        for position, error in sorted(errors.items()):
            on_id, name, key = described_clash(error)
            if on_id is False:
                out.clashes.append(await self.complete(Clash(position, name or "", key),
                                                       documents[position]))
            else:
                by_id.append((position, on_id))
        if not by_id:
            return out
        held = await self._fetch([documents[p]["_id"] for p, _ in by_id])
        for position, on_id in by_id:
            found = held.get(id_key(documents[position]["_id"]))
            if found is not None:
                (out.same if found == document_bytes(documents[position])
                 else out.different).append(position)
            elif on_id:  # gone since the insert failed: writing it again is still right
                out.different.append(position)
            else:
                out.clashes.append(await self.clash_of(position, documents[position]))
        return out

    async def complete(self, clash: Clash, document: Any) -> Clash:
        """Fill in what the server left out: the index (probed) or the key (from the index's
        fields; mongo-java-server names the index but gives no `keyValue`)."""
        if clash.index in (None, "", UNKNOWN_INDEX):
            return await self.clash_of(clash.position, document)
        if clash.key is None:
            fields = dict(await self._unique_indexes()).get(clash.index)
            if fields:
                decoded = bson.decode(document_bytes(document))
                clash.key = {f: _path(decoded, f) for f in fields}
        return clash

    async def clash_of(self, position: int, document: Any) -> Clash:
        """Which unique index (other than `_id`) holds `document`'s key already."""
        decoded = bson.decode(document_bytes(document))
        for name, fields in await self._unique_indexes():
            key = {f: _path(decoded, f) for f in fields}
            if await self.target.find_one(key, projection={"_id": 1}) is not None:
                return Clash(position, name, key)
        return Clash(position, UNKNOWN_INDEX, None)

    async def _fetch(self, ids: list[Any]) -> dict[Any, bytes]:
        held: dict[Any, bytes] = {}
        async for doc in self.target.find({"_id": {"$in": ids}}, batch_size=len(ids)):
            held[id_key(doc["_id"])] = bytes(doc.raw)
        return held

    async def _unique_indexes(self) -> list[tuple[str, list[str]]]:
        if self._unique is None:
            self._unique = []
            async for spec in await self.target.list_indexes():
                if spec.get("unique") and spec.get("name") != "_id_":
                    self._unique.append((str(spec["name"]), list(spec["key"])))
        return self._unique


def _path(document: dict[str, Any], dotted: str) -> Any:
    """The value at a dotted path; missing is null, as a unique index sees it."""
    value: Any = document
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value
