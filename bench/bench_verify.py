#!/usr/bin/env python3
"""Hash verification of N identical documents (default 1,000,000) on two local servers.

    .venv/bin/python bench/bench_verify.py [--total 1000000] [--source-uri URI --target-uri URI]
                                           [--partitions N] [--ceiling] [--keep]

Loads the same N documents (about 190 bytes of BSON each: ObjectId `_id`, numbers, strings,
an array, an embedded document) into a source and a target, then times
`verify(mode="hash")`, which reads both sides in `_id` order and compares every document's
raw bytes. Without URIs, two FerretDB servers are started on loopback (one per side, as in the
tests). `--ceiling` also times one plain sorted raw scan of the source alone: the server's own
read speed, the floor for any verification. Prints its figures; not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import tempfile
import time
from pathlib import Path

import bson
from bson import ObjectId
from bson.raw_bson import RawBSONDocument
from pymongo import AsyncMongoClient

from dataworks.core.clients import RAW_CODEC, ReadOnlyCollection
from dataworks.testing.ferretdb import FerretDBServer
from dataworks.verify import verify

DB, COLLECTION = "dw_bench_verify", "orders"
BATCH = 10_000


def batch(start: int, size: int) -> list[RawBSONDocument]:
    """Deterministic documents: both sides get byte-identical copies."""
    out = []
    for i in range(start, start + size):
        doc = {
            "_id": ObjectId(i.to_bytes(4, "big") + b"\x00" * 4 + i.to_bytes(4, "big")),
            "n": i,
            "customer": f"customer {i % 50_000}",
            "amount": i * 1.25,
            "tags": ["service", "bench"],
            "address": {"city": f"city {i % 97}", "zip": str(10_000 + i % 90_000)},
            "status": "closed" if i % 3 else "open",
        }
        out.append(RawBSONDocument(bson.encode(doc)))
    return out


async def load(source, target, total: int) -> float:
    started = time.monotonic()
    for start in range(0, total, BATCH):
        docs = batch(start, min(BATCH, total - start))
        await asyncio.gather(source.insert_many(docs, ordered=False),
                             target.insert_many(docs, ordered=False))
    return time.monotonic() - started


async def scan(collection) -> float:
    started = time.monotonic()
    async for _ in collection.find_raw_batches({}, sort=[("_id", 1)], batch_size=1000):
        pass
    return time.monotonic() - started


async def run(args: argparse.Namespace, source_uri: str, target_uri: str) -> None:
    source_client = AsyncMongoClient(source_uri, document_class=RawBSONDocument)
    target_client = AsyncMongoClient(target_uri, document_class=RawBSONDocument)
    source = source_client[DB].get_collection(COLLECTION, codec_options=RAW_CODEC)
    target = target_client[DB].get_collection(COLLECTION, codec_options=RAW_CODEC)
    try:
        await source_client.drop_database(DB)
        await target_client.drop_database(DB)
        load_s = await load(source, target, args.total)
        print(f"loaded {args.total:,} identical documents into each side in {load_s:.1f}s")
        if args.ceiling:
            scan_s = await scan(source)
            print(f"ceiling: one sorted raw scan of the source alone: {scan_s:.1f}s "
                  f"({args.total / scan_s:,.0f} docs/s)")
        report = await verify(ReadOnlyCollection(source), target, "hash",
                              partitions=args.partitions, parallelism=args.parallelism)
        assert report.equal, report.to_dict(limit=5)
        rate = args.total / report.seconds
        print(f"hash verification: {report.matched:,} of {report.compared:,} documents "
              f"identical, equal={report.equal}, in {report.seconds:.1f}s ({rate:,.0f} docs/s "
              f"per side); partitions={report.partitions} ({report.method})")
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of this process: {peak_mb:.0f} MB")
    finally:
        if not args.keep:
            await source_client.drop_database(DB)
            await target_client.drop_database(DB)
        await source_client.close()
        await target_client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--total", type=int, default=1_000_000)
    parser.add_argument("--source-uri")
    parser.add_argument("--target-uri")
    parser.add_argument("--partitions", type=int, default=None)
    parser.add_argument("--parallelism", type=int, default=4)
    parser.add_argument("--ceiling", action="store_true")
    parser.add_argument("--keep", action="store_true", help="leave the data in place")
    args = parser.parse_args()
    if args.source_uri and args.target_uri:
        asyncio.run(run(args, args.source_uri, args.target_uri))
        return
    with tempfile.TemporaryDirectory(prefix="dw-bench-verify-") as tmp:
        servers = [FerretDBServer(Path(tmp) / side).start() for side in ("source", "target")]
        try:
            print(f"two FerretDB servers on {servers[0].uri} and {servers[1].uri}")
            asyncio.run(run(args, servers[0].uri, servers[1].uri))
        finally:
            for server in servers:
                with contextlib.suppress(Exception):
                    server.stop()


if __name__ == "__main__":
    main()
