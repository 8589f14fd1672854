"""Planning a Cosmos DB source whose `$sample` is throttled: the client's peak memory.

    .venv/bin/python -m bench.plan_throttled_sample [--docs 1000000] [--cursors 8]

A fresh mongo-java-server (2 GB heap) is loaded with `--docs` small documents
(`{_id: ObjectId (one per second from 2024-01-01), n: i}`, about 40 bytes each), then read
through the Cosmos DB stand-in (`dataworks.testing.cosmos`) with `throttle_sample`: every
`$sample` is answered 16500, whatever the budget. A child process (nothing else in it: its
peak RSS is the planner's) connects with the portal connection string and runs what
`dataworks migrate` runs to plan (`PartitionPlanner.plan(--cursors)`): `$sample` retried
with backoff for its budget (`SAMPLE_RETRY_S`, 60 s; `--sample-retry-s`), then boundaries
from `_id` probes. It reports its peak RSS (`ru_maxrss`) before and after planning.

Issue 15's goal: under 300 MB at 1,000,000 documents (the old fallback kept every `_id` of
each type group in a Python list; `--old-fallback` plans with it, to compare).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

DB, COLLECTION = "bench", "plan"
GOAL_MB = 300.0


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KB


async def _scan_every_id(self: Any, count: int) -> dict[str, list[Any]]:
    """The fallback before issue 15 (commit 6130d46), for comparison only: each type
    group's `_id`s read into a list, sorted, then thinned."""
    from dataworks.migrations.partitioning import RANGE_GROUPS, SAMPLE_PER_PARTITION

    grouped: dict[str, list[Any]] = {}
    for group in RANGE_GROUPS:
        cursor = self.source.find({"_id": {"$type": group}}, {"_id": 1}, sort=[("_id", 1)],
                                  batch_size=10_000)
        group_ids = [doc["_id"] async for doc in cursor]
        if group_ids:
            step = max(1, len(group_ids) // (SAMPLE_PER_PARTITION * count))
            grouped[group] = group_ids[::step]
    return grouped


async def _plan(uri: str, cursors: int, sample_retry_s: float,
                old_fallback: bool = False) -> dict[str, Any]:
    from pymongo import AsyncMongoClient

    from dataworks.core.clients import ReadOnlyCollection
    from dataworks.migrations import partitioning
    from dataworks.migrations.partitioning import PartitionPlanner

    partitioning.SAMPLE_RETRY_S = sample_retry_s
    if old_fallback:
        PartitionPlanner._probe_boundaries = _scan_every_id  # type: ignore[method-assign]
    client: AsyncMongoClient = AsyncMongoClient(uri)
    retried: list[str] = []
    try:
        await client.admin.command("ping")
        before = _peak_mb()
        started = time.monotonic()
        planner = PartitionPlanner(ReadOnlyCollection(client[DB][COLLECTION]),
                                   on_retry=lambda v, *_: retried.append(v.kind.value))
        partitions = await planner.plan(cursors)
        return {"partitions": len(partitions),
                "groups": sorted({p.group for p in partitions}),
                "plan_s": round(time.monotonic() - started, 1),
                "retries": len(retried), "throttled_retries": retried.count("throttled"),
                "peak_rss_mb_before_planning": round(before, 1),
                "peak_rss_mb": round(_peak_mb(), 1)}
    finally:
        await client.close()


def child(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("uri")
    parser.add_argument("--cursors", type=int, default=8)
    parser.add_argument("--sample-retry-s", type=float, default=60.0)
    parser.add_argument("--old-fallback", action="store_true")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(_plan(args.uri, args.cursors, args.sample_retry_s,
                                       args.old_fallback))))
    return 0


def load(uri: str, docs: int) -> float:
    from bson import ObjectId
    from pymongo import MongoClient

    start = datetime(2024, 1, 1, tzinfo=UTC)
    began = time.monotonic()
    with MongoClient(uri) as client:
        collection = client[DB][COLLECTION]
        collection.drop()
        for first in range(0, docs, 10_000):
            collection.insert_many(
                [{"_id": ObjectId.from_datetime(start + timedelta(seconds=i)), "n": i}
                 for i in range(first, min(docs, first + 10_000))], ordered=False)
        assert collection.estimated_document_count() == docs
    return time.monotonic() - began


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m bench.plan_throttled_sample",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--cursors", type=int, default=8)
    parser.add_argument("--sample-retry-s", type=float, default=60.0)
    parser.add_argument("--old-fallback", action="store_true",
                        help="plan with the fallback before issue 15 (every _id in a list), "
                        "to compare")
    args = parser.parse_args(argv)

    from dataworks.testing.cosmos import CosmosStandIn
    from dataworks.testing.mongojava import MongoJavaServer

    with tempfile.TemporaryDirectory(prefix="dw-plan-") as work:
        server = MongoJavaServer(Path(work) / "source", heap="2g").start()
        try:
            loaded_s = load(server.uri, args.docs)
            print(f"loaded {args.docs:,} documents in {loaded_s:.0f} s", flush=True)
            with CosmosStandIn.in_front_of(server.uri, throttle_sample=True) as standin:
                done = subprocess.run(
                    [sys.executable, "-m", "bench.plan_throttled_sample", "--child",
                     standin.portal_uri(), "--cursors", str(args.cursors),
                     "--sample-retry-s", str(args.sample_retry_s),
                     *(["--old-fallback"] if args.old_fallback else [])],
                    capture_output=True, text=True, check=False)
                counters = standin.counters
        finally:
            server.stop()
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
        return 1
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result.update(docs=args.docs, old_fallback=args.old_fallback, sample_throttled=counters.throttled_by_command,
                  request_units=round(counters.request_units, 1),
                  goal_mb=GOAL_MB, under_goal=result["peak_rss_mb"] < GOAL_MB)
    print(json.dumps(result, indent=2))
    return 0 if result["under_goal"] and counters.throttled > 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
