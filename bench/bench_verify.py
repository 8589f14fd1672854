#!/usr/bin/env python3
"""Hash verification of N identical documents (default 1,000,000) on two local servers.

    .venv/bin/python -m bench.bench_verify [--total 1000000] [--server ferretdb|mongojava]
                                           [--source-uri URI --target-uri URI]
                                           [--partitions N] [--ceiling] [--json] [--keep]

Loads the same N documents (about 190 bytes of BSON each: ObjectId `_id`, numbers, strings,
an array, an embedded document) into a source and a target, then times hash verification,
which reads both sides (in `_id` order, or in natural order where the source cannot seek
`_id` ranges, as on both servers here) and compares every document's raw bytes. Without URIs,
two servers are started on loopback (FerretDB by default; `--server mongojava`: a
mongo-java-server pair with `--explain`, as in `python -m bench`).

Without `--json`: `verify(mode="hash")` in this process; `--ceiling` also times one sorted
raw scan of the source alone. With `--json` (what `python -m bench` runs), every contender is
measured the same way and one JSON object is printed:
- two full raw scans in parallel, one per side (`find_raw_batches`, 1,000 per batch), in
  natural order (what a hash verification reads from a source that cannot seek `_id`
  ranges) and sorted by `_id` (what it reads from one that can);
- `dataworks verify --mode hash` (the command, a subprocess: wall time, CPU, peak RSS);
- `dataworks migrate --verify none` of the same documents, and of their first tenth, into a
  fresh collection of the target: the client's peak memory at N and N/10.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bson
import psutil
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


async def load(source, target, total: int, tenth=None) -> float:
    """Both sides get the same documents; `tenth` (a source collection) the first tenth."""
    started = time.monotonic()
    for start in range(0, total, BATCH):
        docs = batch(start, min(BATCH, total - start))
        writes = [source.insert_many(docs, ordered=False),
                  target.insert_many(docs, ordered=False)]
        if tenth is not None and start < total // 10:
            writes.append(tenth.insert_many(docs[:total // 10 - start], ordered=False))
        await asyncio.gather(*writes)
    return time.monotonic() - started


async def scan(collection, *, sort: bool = True) -> tuple[float, int]:
    started, found = time.monotonic(), 0
    kwargs: dict[str, Any] = {"sort": [("_id", 1)]} if sort else {}
    async for data in collection.find_raw_batches({}, batch_size=1000, **kwargs):
        found += len(bson.decode_all(data, RAW_CODEC))
    return time.monotonic() - started, found


async def parallel_scans(source, target, *, sort: bool) -> dict[str, Any]:
    """One full raw scan per side, both at once; CPU of this process included."""
    cpu, started = time.process_time(), time.monotonic()
    (_, a), (_, b) = await asyncio.gather(scan(source, sort=sort), scan(target, sort=sort))
    seconds = time.monotonic() - started
    return {"seconds": seconds, "cpu_seconds": time.process_time() - cpu, "docs": a,
            "ok": a == b}


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
            scan_s, _ = await scan(source)
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


def measured_json(args: argparse.Namespace, servers: Any, work: Path) -> dict[str, Any]:
    """Every contender of the verify row, measured the same way (see the module's doc)."""
    from bench._common import run_measured
    from bench.run import Servers, clean_env, dataworks_argv, step

    assert isinstance(servers, Servers)
    src, dst = servers.source.uri, servers.target.uri
    logs, env, dw = work / "logs", clean_env(), dataworks_argv()
    n = args.total
    out: dict[str, Any] = {"total": n, "doc_bytes": len(batch(0, 1)[0].raw), "rows": []}

    def say(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] verify n={n:,} {text} "
              f"(load {psutil.getloadavg()[0]:.2f})", file=sys.stderr, flush=True)

    async def prepare() -> float:
        a = AsyncMongoClient(src, document_class=RawBSONDocument)
        b = AsyncMongoClient(dst, document_class=RawBSONDocument)
        try:
            return await load(a[DB].get_collection(COLLECTION, codec_options=RAW_CODEC),
                              b[DB].get_collection(COLLECTION, codec_options=RAW_CODEC), n,
                              a[DB].get_collection("tenth", codec_options=RAW_CODEC))
        finally:
            await a.close()
            await b.close()

    say("loading identical documents into both sides")
    out["load_seconds"] = round(asyncio.run(prepare()), 1)

    async def scans(sort: bool) -> dict[str, Any]:
        a = AsyncMongoClient(src)
        b = AsyncMongoClient(dst)
        try:
            return await parallel_scans(a[DB][COLLECTION], b[DB][COLLECTION], sort=sort)
        finally:
            await a.close()
            await b.close()

    for sort in (False, True):
        asyncio.run(scans(sort))  # warm-up: this read path, once, not measured
        label = "sorted by _id" if sort else "natural order"
        say(f"two raw scans in parallel, {label}")
        load_now = psutil.getloadavg()
        result, cpu = step(servers, lambda sort=sort: asyncio.run(scans(sort)))
        out["rows"].append({"kind": "verify-scans-sorted" if sort else "verify-scans",
                            "name": f"two full raw scans in parallel (one per side), {label}",
                            **result, "servers_cpu": cpu, "load_before": load_now,
                            "peak_rss_bytes": None})

    common = ["--source-uri", src, "--source-db", DB, "--target-uri", dst, "--target-db", DB]
    say("dataworks verify --mode hash")
    m, cpu = step(servers, lambda: run_measured(
        [[*dw, "verify", "--mode", "hash", "--profile", "data-migration", *common,
          "--source-collection", COLLECTION, "--target-collection", COLLECTION, "--quiet"]],
        cwd=work, log_dir=logs, name="verify-hash", env=env))
    out["rows"].append({"kind": "verify-hash", "name": "dataworks verify --mode hash",
                        "seconds": m.seconds, "cpu_seconds": m.cpu_seconds, "docs": n,
                        "ok": m.ok, "servers_cpu": cpu, "load_before": m.load_before,
                        "peak_rss_bytes": m.peak_rss_bytes, "stderr_tail": m.stderr_tail,
                        "argv": [" ".join(a) for a in m.argv]})

    for coll, docs in (("tenth", n // 10), (COLLECTION, n)):
        say(f"dataworks migrate of {docs:,} of these documents (client memory)")
        m, cpu = step(servers, lambda coll=coll: run_measured(
            [[*dw, "migrate", "--profile", "data-migration", *common, "--source-collection",
              coll, "--target-collection", "copy", "--drop-target", "--verify", "none",
              "--quiet"]], cwd=work, log_dir=logs, name=f"migrate-{coll}", env=env))
        copied = count(dst, "copy")
        out["rows"].append({"kind": "verify-migrate", "name": f"dataworks migrate, {docs:,} "
                            f"documents of {out['doc_bytes']} B", "seconds": m.seconds,
                            "cpu_seconds": m.cpu_seconds, "docs": docs, "ok": m.ok and
                            copied == docs, "servers_cpu": cpu, "load_before": m.load_before,
                            "peak_rss_bytes": m.peak_rss_bytes, "target_count": copied,
                            "stderr_tail": [] if m.ok else m.stderr_tail})
        drop(dst, "copy")
    return out


def count(uri: str, collection: str) -> int:
    from pymongo import MongoClient

    with MongoClient(uri) as client:
        return int(client[DB].command("collStats", collection)["count"])


def drop(uri: str, collection: str) -> None:
    from pymongo import MongoClient

    with MongoClient(uri) as client:
        client[DB].drop_collection(collection)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--total", type=int, default=1_000_000)
    parser.add_argument("--server", choices=["ferretdb", "mongojava"], default="ferretdb")
    parser.add_argument("--source-uri")
    parser.add_argument("--target-uri")
    parser.add_argument("--partitions", type=int, default=None)
    parser.add_argument("--parallelism", type=int, default=4)
    parser.add_argument("--ceiling", action="store_true")
    parser.add_argument("--json", action="store_true",
                        help="measure every contender as subprocesses/steps; print JSON")
    parser.add_argument("--keep", action="store_true", help="leave the data in place")
    args = parser.parse_args()
    if args.json:
        from bench.run import Servers

        with tempfile.TemporaryDirectory(prefix="dw-bench-verify-") as tmp, \
                Servers(Path(tmp) / "servers", args.server) as servers:
            result = measured_json(args, servers, Path(tmp))
        print(json.dumps(result), flush=True)
        return
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
