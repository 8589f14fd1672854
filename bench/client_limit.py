"""Rows that show where the client is the limit (issue 19), each run as its own process so
`run_measured` sees its CPU and memory:

    python -m bench.client_limit bare-copy --source URI --target URI --db DB \
        --collection C --target-collection T [--streams 1,2,4] [--batch-size 1000]
    python -m bench.client_limit transform-stage --total N [--workers 1,2] [--seed 42]
    python -m bench.client_limit read-cost --uri URI --db DB --collection C [--rounds 3]

`bare-copy` is the least a copy can do: source `find_raw_batches` -> split into
`RawBSONDocument`s -> `insert_many(ordered=False)`, no checkpoints, no metrics, with 1, 2 and 4
concurrent streams (each stream takes the next raw batch of one shared cursor and inserts
it); the best is the reference `dataworks migrate` is held to.

`transform-stage` is the volvo strategy's `transform` alone: recorded raw batches of volvo
documents (the generator's, byte for byte) go through `TransformPool` with 1 and 2 worker
processes, and through the in-process path for reference; nothing is read or written. The
workers are started and have loaded the strategy before the clock starts.

`read-cost` is the client CPU per document of reading a collection the way migrate did
(`find_raw_batches` + `bson.decode_all` into `RawBSONDocument`s) and the way it does now
(`find_raw_documents`); not part of `python -m bench` (docs/BENCHMARKS.md, "Pass-through").

Each prints one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

import bson
from bson.raw_bson import RawBSONDocument

from bench._common import VOLVO, VOLVO_STRATEGY, encoded_batches
from dataworks.core.clients import RAW_CODEC


# -- the bare copy ----------------------------------------------------------------------------

async def _copy_once(source: str, target: str, db: str, collection: str, target_collection: str,
                     streams: int, batch_size: int) -> dict[str, Any]:
    from pymongo import AsyncMongoClient

    src: AsyncMongoClient[Any] = AsyncMongoClient(source, maxPoolSize=streams + 2)
    dst: AsyncMongoClient[Any] = AsyncMongoClient(target, maxPoolSize=streams + 2)
    try:
        out = dst[db][target_collection]
        await out.drop()
        cursor = src[db][collection].find_raw_batches({}, batch_size=batch_size)
        lock = asyncio.Lock()
        docs = nbytes = 0

        async def stream() -> None:
            nonlocal docs, nbytes
            while True:
                async with lock:  # one getMore at a time on the shared cursor
                    try:
                        data = await cursor.__anext__()
                    except StopAsyncIteration:
                        return
                batch = bson.decode_all(data, RAW_CODEC)
                docs += len(batch)
                nbytes += len(data)
                await out.insert_many(batch, ordered=False)

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(stream() for _ in range(streams)))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        await cursor.close()
        stats = await dst[db].command("collStats", target_collection)
        await out.drop()
        return {"streams": streams, "seconds": seconds, "cpu_seconds": cpu, "docs": docs,
                "bytes": nbytes, "docs_per_s": docs / seconds,
                "target_count": int(stats["count"])}
    finally:
        await src.close()
        await dst.close()


def bare_copy(args: argparse.Namespace) -> dict[str, Any]:
    runs = [asyncio.run(_copy_once(args.source, args.target, args.db, args.collection,
                                   args.target_collection, streams, args.batch_size))
            for streams in args.streams]
    best = max(runs, key=lambda r: r["docs_per_s"])
    return {**best, "runs": runs}


# -- reading: find_raw_batches + split vs find_raw_documents ---------------------------------

async def _read_cost(uri: str, db: str, collection: str, rounds: int,
                     batch_size: int) -> dict[str, Any]:
    """Client CPU per document of reading a whole collection the two ways migrate could."""
    from dataworks.core.clients import Endpoint, ReadOnlyCollection, connect

    client = connect(Endpoint(uri, db, collection))
    source = ReadOnlyCollection(client[db][collection])
    out: dict[str, list[float]] = {"find_raw_batches + decode_all": [],
                                   "find_raw_documents": []}
    try:
        for _ in range(rounds):
            for way, cost in out.items():
                cpu, docs = time.process_time(), 0
                if way == "find_raw_documents":
                    cursor = source.find_raw_documents({}, sort=[("_id", 1)],
                                                       batch_size=batch_size)
                    async for batch in cursor:
                        docs += len(batch)
                        _ = batch[-1]["_id"], sum(len(d.raw) for d in batch)
                else:
                    cursor = source.find_raw_batches({}, sort=[("_id", 1)],
                                                     batch_size=batch_size)
                    async for data in cursor:
                        batch = bson.decode_all(data, RAW_CODEC)
                        docs += len(batch)
                        _ = batch[-1]["_id"], len(data)
                await cursor.close()
                cost.append((time.process_time() - cpu) / docs * 1e6)
    finally:
        await client.close()
    return {"docs": docs, "us_per_doc": {k: [round(v, 2) for v in c] for k, c in out.items()},
            "best_us_per_doc": {k: round(min(c), 2) for k, c in out.items()}}


# -- the transform stage alone ----------------------------------------------------------------

async def _through_pool(batches: list[list[RawBSONDocument]], workers: int,
                        batch_size: int) -> dict[str, Any]:
    from dataworks.core.clients import Endpoint
    from dataworks.migrations.loading import load_strategy
    from dataworks.migrations.transform_pool import TransformPool
    from dataworks.monitoring.metrics import RunMetrics

    strategy_cls, _ = load_strategy(VOLVO_STRATEGY)
    metrics = RunMetrics()
    # Nothing connects: the volvo strategy never touches `context.source`.
    endpoint = Endpoint("mongodb://127.0.0.1:1/", "bench", "orders")
    pool = TransformPool.for_run(strategy_cls, workers, source=endpoint,
                                 target_namespace="bench.out", batch_size=batch_size,
                                 metrics=metrics)
    assert pool is not None
    try:
        pids = await pool.warm_up()  # every worker started, strategy loaded: not timed
        assert len(pids) == workers, pids
        started, cpu = time.perf_counter(), time.process_time()
        pending = [await pool.submit(batch) for batch in batches]
        out = sum(len(docs) for docs, _origins in await asyncio.gather(*pending))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        await pool.close()
    return {"workers": workers, "seconds": seconds, "main_cpu_seconds": cpu,
            "docs": metrics.transformed, "out": out}


async def _in_process(batches: list[list[RawBSONDocument]]) -> dict[str, Any]:
    from dataworks.migrations.loading import load_strategy
    from dataworks.migrations.reader import apply_transform, encode_transformed
    from dataworks.monitoring.metrics import RunMetrics

    strategy_cls, _ = load_strategy(VOLVO_STRATEGY)
    strategy = strategy_cls(None)  # type: ignore[arg-type]  # transform needs no context
    metrics = RunMetrics()
    started = time.perf_counter()
    out = 0
    for batch in batches:  # what the reader does per batch with --transform-workers 0
        docs = [bson.decode(d.raw) for d in batch]
        out += len(encode_transformed(await apply_transform(strategy.transform, docs, metrics)))
    return {"workers": 0, "seconds": time.perf_counter() - started, "docs": metrics.transformed,
            "out": out}


def transform_stage(args: argparse.Namespace) -> dict[str, Any]:
    blobs = encoded_batches(VOLVO, seed=args.seed, total=args.total,
                            batch_size=args.batch_size, processes=2)
    batches = [bson.decode_all(blob, RAW_CODEC) for blob in blobs]
    nbytes = sum(len(blob) for blob in blobs)
    del blobs
    runs = [asyncio.run(_in_process(batches))]
    runs += [asyncio.run(_through_pool(batches, w, args.batch_size)) for w in args.workers]
    for run in runs:
        if run["docs"] != args.total or run["out"] != args.total:
            raise RuntimeError(f"transform stage lost documents: {run}")
        run["docs_per_s"] = run["docs"] / run["seconds"]
    by_workers = {r["workers"]: r for r in runs}
    one = by_workers.get(1)
    result: dict[str, Any] = {"total": args.total, "bytes": nbytes, "runs": runs}
    if one is not None:
        for r in runs:
            r["vs_one_worker"] = r["docs_per_s"] / one["docs_per_s"]
    return result


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.client_limit",
                                     description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    copy = sub.add_parser("bare-copy")
    copy.add_argument("--source", required=True)
    copy.add_argument("--target", required=True)
    copy.add_argument("--db", required=True)
    copy.add_argument("--collection", required=True)
    copy.add_argument("--target-collection", required=True)
    copy.add_argument("--streams", type=_ints, default=[1, 2, 4])
    copy.add_argument("--batch-size", type=int, default=1000)
    read = sub.add_parser("read-cost")
    read.add_argument("--uri", required=True)
    read.add_argument("--db", required=True)
    read.add_argument("--collection", required=True)
    read.add_argument("--rounds", type=int, default=3)
    read.add_argument("--batch-size", type=int, default=1000)
    stage = sub.add_parser("transform-stage")
    stage.add_argument("--total", type=int, required=True)
    stage.add_argument("--workers", type=_ints, default=[1, 2])
    stage.add_argument("--seed", type=int, default=42)
    stage.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.command == "bare-copy":
        result = bare_copy(args)
    elif args.command == "read-cost":
        result = asyncio.run(_read_cost(args.uri, args.db, args.collection, args.rounds,
                                        args.batch_size))
    else:
        result = transform_stage(args)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
