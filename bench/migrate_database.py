"""A whole database in one `dataworks migrate` (12 collections, 200,000 documents in all)
against `mongodump --archive | mongorestore --archive -j 4` of the same database.

    .venv/bin/python -m bench.migrate_database [--total 200000] [--collections 12]
                                               [--parallel-collections 2] [--doc-bytes 300]

Two fresh FerretDB servers; the source database `benchdb` gets collections of decreasing
size (weights 12, 11, ..., 1), small documents (~`--doc-bytes` each); then
`dataworks migrate --source-db benchdb --verify none` runs as a subprocess (documents/s,
client CPU, peak RSS of its process tree), every target count is checked and the target
database dropped; then mongodump | mongorestore when the tools can be had (bench.mongotools).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

import psutil
from pymongo import MongoClient

from bench._common import run_measured
from bench.migrate_scale import small_documents
from bench.mongotools import ToolsUnavailable, ensure_mongo_tools
from bench.run import Servers, clean_env, dataworks_argv

DB = "benchdb"


def sizes(total: int, collections: int) -> list[int]:
    weights = list(range(collections, 0, -1))
    out = [total * w // sum(weights) for w in weights]
    out[0] += total - sum(out)
    return out


async def _load(uri: str, plan: list[int], doc_bytes: int) -> None:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(uri)
    try:
        for i, n in enumerate(plan):
            for batch in small_documents(n, doc_bytes):
                await client[DB][f"c{i:02d}"].insert_many(batch, ordered=False)
    finally:
        await client.close()


def _check(uri: str, plan: list[int]) -> None:
    with MongoClient(uri) as client:
        for i, n in enumerate(plan):
            got = int(client[DB].command("collStats", f"c{i:02d}")["count"])
            if got != n:
                raise RuntimeError(f"c{i:02d}: target holds {got} documents, expected {n}")
        client.drop_database(DB)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total", type=int, default=200_000)
    parser.add_argument("--collections", type=int, default=12)
    parser.add_argument("--parallel-collections", type=int, default=2)
    parser.add_argument("--doc-bytes", type=int, default=300)
    args = parser.parse_args(argv)
    plan = sizes(args.total, args.collections)
    print(f"cpus {psutil.cpu_count()}, load {psutil.getloadavg()[0]:.2f}, "
          f"{args.collections} collections {plan}, ~{args.doc_bytes} B", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="dataworks-dbbench-") as tmp:
        work = Path(tmp)
        with Servers(work / "servers") as servers:
            asyncio.run(_load(servers.source.uri, plan, args.doc_bytes))
            migrate = [*dataworks_argv(), "migrate", "--profile", "data-migration", "--quiet",
                       "--verify", "none", "--checkpoint-store", f"file:{work / 'ckpt'}/",
                       "--source-uri", servers.source.uri, "--source-db", DB,
                       "--target-uri", servers.target.uri,
                       "--parallel-collections", str(args.parallel_collections)]
            m = run_measured([migrate], cwd=work, log_dir=work / "logs", name="migrate-db",
                             env=clean_env(), timeout=3600)
            if not m.ok:
                raise RuntimeError(f"migrate failed: {m.stderr_tail}")
            _check(servers.target.uri, plan)
            rows.append(("dataworks migrate (database run)", m))
            try:
                tools = ensure_mongo_tools()
            except (ToolsUnavailable, OSError) as exc:
                print(f"mongodump | mongorestore: not measured ({exc})", flush=True)
            else:
                dump = [tools["mongodump"], "--uri", servers.source.uri, "--db", DB, "--archive"]
                restore = [tools["mongorestore"], "--uri", servers.target.uri, "--archive",
                           "--numParallelCollections", "4"]
                t = run_measured([dump, restore], cwd=work, log_dir=work / "logs",
                                 name="mongotools-db", env=clean_env(), timeout=3600)
                if not t.ok:
                    raise RuntimeError(f"mongo-tools failed: {t.stderr_tail}")
                _check(servers.target.uri, plan)
                rows.append(("mongodump | mongorestore -j 4", t))
    for name, r in rows:
        print(f"| {name} | {args.total:,} | {args.total / r.seconds:,.0f} | {r.seconds:,.1f} | "
              f"{r.cpu_seconds:,.1f} | {r.peak_rss_bytes / 1e6:,.0f} MB |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
