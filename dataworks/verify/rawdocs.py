"""Raw BSON helpers for verification: split cursor batches, name and order `_id`s.

Verification compares documents as the bytes each server returns: two identical documents
are identical bytes, so the common case costs one `bytes ==` and no decoding. Only when bytes
differ is the `_id` decoded, to tell a changed document from a missing or an extra one.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import bson
from bson import Binary, Decimal128, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.datetime_ms import DatetimeMS

_INT32 = struct.Struct("<i")
#: Dates as milliseconds: any BSON date decodes (even outside Python's range) and orders.
DECODE_OPTIONS: CodecOptions[dict[str, Any]] = CodecOptions(
    datetime_conversion=DatetimeConversion.DATETIME_MS
)


def split_documents(batch: bytes) -> list[bytes]:
    """The documents of one `find_raw_batches` batch (BSON documents back to back)."""
    out = []
    position, end = 0, len(batch)
    unpack = _INT32.unpack_from
    while position < end:
        (length,) = unpack(batch, position)
        out.append(batch[position : position + length])
        position += length
    return out


def document_id(document: bytes) -> Any:
    """The decoded `_id` of one raw document."""
    return bson.decode(document, DECODE_OPTIONS).get("_id")


_RESUME_OPTIONS: CodecOptions[dict[str, Any]] = CodecOptions(
    datetime_conversion=DatetimeConversion.DATETIME_AUTO
)


def resume_id(document: bytes) -> Any:
    """The `_id` to reopen a cursor after, decoded as queries expect it (dates as datetime)."""
    return bson.decode(document, _RESUME_OPTIONS).get("_id")


def id_key(value: Any) -> Any:
    """A hashable identity for an `_id`: equal for values the server treats as the same
    `_id` (1, 1.0 and Int64(1)), different otherwise (field order counts in documents)."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, Decimal128):
        return ("number", value.to_decimal())
    if isinstance(value, (int, float, Decimal)):
        return ("number", value)
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, ObjectId):
        return ("objectId", value.binary)
    return ("bson", bson.encode({"_id": value}))


def sort_key(value: Any) -> tuple[Any, ...]:
    """The server's `_id` order (BSON comparison order: type bracket first, then value), as
    a Python key. Used only where two streams' documents differ, to decide which side is
    behind; `reconcile` in the merge corrects any disagreement with the server's order."""
    if isinstance(value, bool):
        return (40, value)
    if isinstance(value, (int, float, Decimal)):
        return (10, value)
    if isinstance(value, Decimal128):
        return (10, value.to_decimal())
    if isinstance(value, str):
        return (15, value)
    if isinstance(value, ObjectId):
        return (35, value.binary)
    if isinstance(value, DatetimeMS):
        return (45, int(value))
    if value is None:
        return (5,)
    if isinstance(value, MinKey):
        return (1,)
    if isinstance(value, MaxKey):
        return (100,)
    if isinstance(value, Mapping):
        return (20, tuple((sort_key(v)[0], str(k), sort_key(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return (25, tuple(sort_key(v) for v in value))
    if isinstance(value, Binary):
        return (30, len(value), value.subtype, bytes(value))
    if isinstance(value, bytes):
        return (30, len(value), 0, value)
    if isinstance(value, Timestamp):
        return (47, value.time, value.inc)
    if isinstance(value, Regex):
        return (50, str(value.pattern), str(value.flags))
    return (99, bson.encode({"_id": value}))


def display_id(value: Any) -> str:
    """How an `_id` is shown to people and written to reports (relaxed extended JSON)."""
    from bson import json_util

    return json_util.dumps(value, json_options=json_util.RELAXED_JSON_OPTIONS)
