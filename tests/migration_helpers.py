"""Helpers for migration tests: mixed-type data sets and byte-exact comparison."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import bson
from bson import Binary, Int64, ObjectId
from pymongo import MongoClient

from dataworks.core.clients import RAW_CODEC


def mixed_documents(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Documents with ObjectId, string and integer `_id`s and most BSON types FerretDB keeps."""
    rng = random.Random(seed)
    docs = []
    for i in range(count):
        kind = i % 3
        _id: Any = ObjectId() if kind == 0 else f"order-{i:08d}" if kind == 1 else i * 7
        docs.append(
            {
                "_id": _id,
                "n": i,
                "big": Int64(2**40 + i),
                "price": round(rng.uniform(1, 1000), 2),
                "when": dt.datetime(2024, 1, 1) + dt.timedelta(seconds=i),
                "blob": Binary(rng.randbytes(16)),
                "uuid": Binary(rng.randbytes(16), 4),
                "missing": None,
                "flag": bool(i % 2),
                "tags": ["a", "b", str(i % 10)],
                "customer": {"name": f"c{i % 97}", "address": {"city": "Göteborg", "zip": i % 1000}},
                "jobs": [{"code": f"J{j}", "hours": j * 0.5} for j in range(i % 4)],
            }
        )
    return docs


def load(uri: str, db: str, coll: str, docs: list[dict[str, Any]]) -> None:
    with MongoClient(uri) as client:
        collection = client[db][coll]
        collection.drop()
        for start in range(0, len(docs), 10_000):
            collection.insert_many(docs[start : start + 10_000], ordered=False)


def raw_by_id(uri: str, db: str, coll: str) -> dict[bytes, bytes]:
    """Every document's raw BSON keyed by its encoded `_id`; fails on a duplicate `_id`."""
    out: dict[bytes, bytes] = {}
    with MongoClient(uri) as client:
        collection = client[db].get_collection(coll, codec_options=RAW_CODEC)
        for batch in collection.find_raw_batches({}, batch_size=10_000):
            for doc in bson.decode_all(batch, RAW_CODEC):
                key = bson.encode({"k": doc["_id"]})
                assert key not in out, f"duplicate _id {doc['_id']!r}"
                out[key] = doc.raw
    return out


def assert_identical(source: tuple[str, str, str], target: tuple[str, str, str]) -> int:
    left, right = raw_by_id(*source), raw_by_id(*target)
    missing = left.keys() - right.keys()
    extra = right.keys() - left.keys()
    changed = [k for k in left.keys() & right.keys() if left[k] != right[k]]
    assert not missing and not extra and not changed, (
        f"{len(missing)} missing, {len(extra)} extra, {len(changed)} changed"
    )
    return len(left)
