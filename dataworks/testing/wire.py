"""MongoDB wire-protocol messages, just enough for a message-level test proxy.

Frames (16-byte header: length, requestID, responseTo, opCode) and the three opcodes a
modern driver uses: OP_MSG (2013) for everything, OP_QUERY (2004) for the first handshake
and OP_REPLY (1) for its answer. Bodies stay raw bytes until someone asks for a document,
so large read replies pass through without being decoded.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import bson

OP_REPLY = 1
OP_QUERY = 2004
OP_COMPRESSED = 2012
OP_MSG = 2013

CHECKSUM_PRESENT = 1 << 0
MORE_TO_COME = 1 << 1
EXHAUST_ALLOWED = 1 << 16

MAX_MESSAGE = 64 * 1024 * 1024  # above any server's maxMessageSizeBytes (48 MB)

_HEADER = struct.Struct("<iiii")
_INT32 = struct.Struct("<i")
_UINT32 = struct.Struct("<I")
_OP_REPLY_HEAD = struct.Struct("<iqii")


class WireError(ValueError):
    """A frame that is not a well-formed MongoDB message."""


@dataclass
class Frame:
    request_id: int
    response_to: int
    op_code: int
    payload: bytes  # everything after the header

    def encode(self) -> bytes:
        return _HEADER.pack(16 + len(self.payload), self.request_id, self.response_to,
                            self.op_code) + self.payload


async def read_frame(reader: asyncio.StreamReader) -> Frame:
    """One whole message; `asyncio.IncompleteReadError` at end of stream."""
    header = await reader.readexactly(16)
    length, request_id, response_to, op_code = _HEADER.unpack(header)
    if not 16 <= length <= MAX_MESSAGE:
        raise WireError(f"message length {length} out of range")
    return Frame(request_id, response_to, op_code, await reader.readexactly(length - 16))


def split_documents(data: bytes) -> list[bytes]:
    """Concatenated BSON documents, each kept as its own raw bytes (not decoded)."""
    docs, pos = [], 0
    while pos < len(data):
        (size,) = _INT32.unpack_from(data, pos)
        if size < 5 or pos + size > len(data):
            raise WireError("truncated BSON document")
        docs.append(data[pos:pos + size])
        pos += size
    return docs


def _cstring(data: bytes, pos: int) -> tuple[str, int]:
    end = data.index(b"\x00", pos)
    return data[pos:end].decode(), end + 1


@dataclass
class OpMsg:
    """An OP_MSG: flag bits, the section-0 body (raw) and kind-1 document sequences."""

    flags: int
    body_raw: bytes
    sequences: dict[str, list[bytes]] = field(default_factory=dict)
    _body: dict[str, Any] | None = None

    @classmethod
    def parse(cls, payload: bytes) -> OpMsg:
        (flags,) = _UINT32.unpack_from(payload, 0)
        end = len(payload) - (4 if flags & CHECKSUM_PRESENT else 0)
        pos, body, sequences = 4, None, {}
        while pos < end:
            kind = payload[pos]
            pos += 1
            (size,) = _INT32.unpack_from(payload, pos)
            if kind == 0:
                body = payload[pos:pos + size]
            elif kind == 1:
                name, docs_at = _cstring(payload, pos + 4)
                sequences[name] = split_documents(payload[docs_at:pos + size])
            else:
                raise WireError(f"unknown OP_MSG section kind {kind}")
            pos += size
        if body is None:
            raise WireError("OP_MSG without a body section")
        # The checksum is dropped: re-encoded messages never carry one.
        return cls(flags & ~CHECKSUM_PRESENT, body, sequences)

    @classmethod
    def of(cls, body: Mapping[str, Any], flags: int = 0) -> OpMsg:
        return cls(flags, bson.encode(body))

    @property
    def body(self) -> dict[str, Any]:
        if self._body is None:
            self._body = bson.decode(self.body_raw)
        return self._body

    def set_body(self, body: Mapping[str, Any]) -> None:
        self._body = dict(body)
        self.body_raw = bson.encode(body)

    @property
    def command(self) -> str:
        return next(iter(self.body), "")

    def encode(self) -> bytes:
        parts = [_UINT32.pack(self.flags), b"\x00", self.body_raw]
        for name, docs in self.sequences.items():
            ident = name.encode() + b"\x00"
            parts += [b"\x01", _INT32.pack(4 + len(ident) + sum(map(len, docs))), ident, *docs]
        return b"".join(parts)


@dataclass
class OpQuery:
    flags: int
    collection: str
    skip: int
    limit: int
    query: dict[str, Any]
    rest: bytes  # the optional field selector, untouched

    @classmethod
    def parse(cls, payload: bytes) -> OpQuery:
        (flags,) = _INT32.unpack_from(payload, 0)
        collection, pos = _cstring(payload, 4)
        skip, limit = struct.unpack_from("<ii", payload, pos)
        pos += 8
        (size,) = _INT32.unpack_from(payload, pos)
        query = bson.decode(payload[pos:pos + size])
        return cls(flags, collection, skip, limit, query, payload[pos + size:])

    def encode(self) -> bytes:
        return (_INT32.pack(self.flags) + self.collection.encode() + b"\x00"
                + struct.pack("<ii", self.skip, self.limit) + bson.encode(self.query) + self.rest)


@dataclass
class OpReply:
    flags: int
    cursor_id: int
    starting_from: int
    documents: list[dict[str, Any]]

    @classmethod
    def parse(cls, payload: bytes) -> OpReply:
        flags, cursor_id, starting_from, _count = _OP_REPLY_HEAD.unpack_from(payload, 0)
        docs = [bson.decode(raw) for raw in split_documents(payload[_OP_REPLY_HEAD.size:])]
        return cls(flags, cursor_id, starting_from, docs)

    def encode(self) -> bytes:
        return (_OP_REPLY_HEAD.pack(self.flags, self.cursor_id, self.starting_from,
                                    len(self.documents))
                + b"".join(bson.encode(doc) for doc in self.documents))
