"""The target's ceiling: how fast it accepts pre-encoded raw BSON batches.

    .venv/bin/python -m bench.ceiling --uri URI --total N [--seed S] [--batch-size B]
                                      [--concurrency 1,2,4,8] [--sweep-docs 20000]

Builds every batch of the data set first (the same documents `dataworks generate` writes
with that seed and batch size, as `RawBSONDocument` lists), then inserts the first
`--sweep-docs` documents at each concurrency into a fresh collection, and finally the whole
data set at the best concurrency. Prints one JSON object. Run by `python -m bench` in its
own process so that the data set it holds in memory leaves with it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from bench._common import VOLVO, encoded_batches, insert_raw, raw_documents


async def measure(args: argparse.Namespace) -> dict[str, object]:
    started = time.perf_counter()
    blobs = encoded_batches(VOLVO, seed=args.seed, total=args.total,
                            batch_size=args.batch_size, processes=args.processes)
    nbytes = sum(len(b) for b in blobs)
    batches = [raw_documents(b) for b in blobs]
    del blobs
    build_s = time.perf_counter() - started

    sweep: dict[int, float] = {}
    levels = [int(c) for c in args.concurrency.split(",")]
    sweep_batches = batches[: max(1, -(-min(args.sweep_docs, args.total) // args.batch_size))]
    sweep_docs = sum(len(b) for b in sweep_batches)
    if len(levels) > 1:
        for level in levels:
            seconds = await insert_raw(args.uri, args.db, "ceiling_sweep", sweep_batches, level)
            sweep[level] = sweep_docs / seconds
        best = max(sweep, key=lambda level: sweep[level])
    else:
        best = levels[0]

    cpu_before = time.process_time()
    seconds = await insert_raw(args.uri, args.db, "ceiling", batches, best)
    cpu = time.process_time() - cpu_before
    return {
        "docs": args.total,
        "bytes": nbytes,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "concurrency": best,
        "sweep_docs": sweep_docs,
        "sweep_docs_per_s": sweep,
        "build_seconds": build_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", required=True)
    parser.add_argument("--db", default="bench")
    parser.add_argument("--total", type=int, required=True)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--concurrency", default="1,2,4,8")
    parser.add_argument("--sweep-docs", type=int, default=20_000)
    parser.add_argument("--processes", type=int, default=2,
                        help="processes that build the data set before the timing starts")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args))))


if __name__ == "__main__":
    main()
