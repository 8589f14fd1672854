"""Deterministic `_id`s and per-batch seeds: what makes `--seed` and `--resume` exact.

- Batch `b` of a run with seed `S` is generated from `batch_seed(S, b)`, so the documents do
  not depend on which worker builds which batch, or in which order.
- A document without `_id` gets ObjectId(4-byte time from S, 3-byte tag from S, 5-byte
  document index): unique per (seed, index), ascending within a run (index-friendly), and
  identical when a resumed run sends the document again, so the server answers "duplicate
  key" instead of storing it twice.
"""

from __future__ import annotations

import hashlib
import struct

from bson.objectid import ObjectId

from dataworks.generators.bsonfast import pack_i32

ID_ELEMENT_HEAD = b"\x07_id\x00"
_EPOCH_2020 = 1_577_836_800
_MAX_INDEX = 2**40


def batch_seed(seed: int, batch_index: int) -> int:
    """Seed of one batch; distinct batches of a run never share a random stream."""
    return (seed << 40) | batch_index


def id_prefix(seed: int) -> bytes:
    """The 7 bytes every generated ObjectId of the run starts with."""
    digest = hashlib.sha256(f"dataworks-generate:{seed}".encode()).digest()
    seconds = _EPOCH_2020 + int.from_bytes(digest[:4], "big") % (5 * 365 * 86_400)
    return seconds.to_bytes(4, "big") + digest[4:7]


def object_id_bytes(prefix: bytes, index: int) -> bytes:
    if not 0 <= index < _MAX_INDEX:
        raise ValueError(f"document index {index} out of range")
    return prefix + index.to_bytes(5, "big")


def object_id(seed: int, index: int) -> ObjectId:
    """The `_id` the engine gives document `index` of a run with `seed`."""
    return ObjectId(object_id_bytes(id_prefix(seed), index))


def has_leading_id(doc: bytes) -> bool:
    """Whether the encoded document's first element is `_id` (where bson.encode puts it)."""
    return doc[5:9] == b"_id\x00"


def with_ids(docs: list[bytes], start: int, prefix: bytes) -> list[bytes]:
    """Give every document that lacks a leading `_id` its deterministic ObjectId."""
    out = []
    for offset, doc in enumerate(docs):
        if doc[5:9] == b"_id\x00":
            out.append(doc)
            continue
        oid = prefix + (start + offset).to_bytes(5, "big")
        out.append(pack_i32(len(doc) + 17) + ID_ELEMENT_HEAD + oid + doc[4:])
    return out


_ID_HEAD = struct.Struct("<i5s7s5s")  # length, type + "_id", the run's prefix, the index


def joined_with_ids(docs: list[bytes], start: int, prefix: bytes) -> bytes:
    """`b"".join(with_ids(docs, start, prefix))`, copying each document once: into the blob
    (its body is joined through a memoryview, not sliced into a new document first)."""
    parts: list[bytes | memoryview] = []
    add = parts.append
    pack = _ID_HEAD.pack
    for index, doc in enumerate(docs, start):
        if doc[5:9] == b"_id\x00":
            add(doc)
            continue
        add(pack(len(doc) + 17, ID_ELEMENT_HEAD, prefix, index.to_bytes(5, "big")))
        add(memoryview(doc)[4:])
    return b"".join(parts)
