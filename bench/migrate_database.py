"""A whole database in one `dataworks migrate` (12 collections, 200,000 documents in all)
against `mongodump --archive | mongorestore --archive -j 4` of the same database.

    .venv/bin/python -m bench.migrate_database [--server ferretdb|mongojava] [--total 200000]
        [--collections 12] [--parallel-collections 2] [--doc-bytes 300] [--rounds 1]
        [--variant='--parallel-cursors 1' ...]

Two fresh servers (FerretDB, or mongo-java-server in memory); the source database `benchdb`
gets collections of decreasing size (weights 12, 11, ..., 1), small documents (~`--doc-bytes`
each). On mongo-java-server one unmeasured raw scan of every source collection and one
unmeasured `dataworks migrate` of the whole database warm the JVMs first. Then, per
round, `dataworks migrate --source-db benchdb --verify none` and
`mongodump --archive | mongorestore --archive -j 4` (when the tools can be had:
bench.mongotools; without them the row is skipped with the reason), each as subprocesses
(documents/s, client CPU from wait4, peak RSS of the process trees, the servers' CPU, the
load average before the step); `--variant` adds migrate runs with extra flags. Rounds 2,
4, ... run the contenders in reverse order, so that none always gets the warmer servers.
After each copy every target collection is compared with its source byte for byte (raw BSON
by `_id`) and the target database dropped.
Prints Markdown rows and writes JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from pymongo import MongoClient

from bench._common import machine_info, run_measured, scan_raw
from bench.migrate_scale import small_documents
from bench.mongotools import ToolsUnavailable, ensure_mongo_tools, version
from bench.run import RESULTS, Servers, clean_env, dataworks_argv, step
from tests.migration_helpers import raw_by_id

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


def _exact(source: str, target: str, plan: list[int]) -> str:
    """'' when every target collection equals its source byte for byte, else what differs.
    Drops the target database either way (the in-memory target keeps one copy at a time)."""
    problems = []
    for i, n in enumerate(plan):
        name = f"c{i:02d}"
        left, right = raw_by_id(source, DB, name), raw_by_id(target, DB, name)
        if len(right) != n or left != right:
            differ = sum(1 for k, v in left.items() if right.get(k) != v)
            problems.append(f"{name}: target {len(right):,} documents of {n:,}, "
                            f"{differ:,} missing or different")
    with MongoClient(target) as client:
        client.drop_database(DB)
    return "; ".join(problems)


def _warm_up(servers: Servers, plan: list[int], work: Path, batch_size: int) -> None:
    """mongo-java-server's JIT: scan every source collection once and copy the whole database
    once, unmeasured, before anything is timed (with only the smallest collection copied,
    the first measured copy still ran 1.5-2x slower than the same command later)."""
    for i in range(len(plan)):
        asyncio.run(scan_raw(servers.source.uri, DB, f"c{i:02d}", sort=False,
                             batch_size=batch_size))
    warm = [*dataworks_argv(), "migrate", "--quiet", "--verify", "none",
            "--checkpoint-store", f"file:{work / 'ckpt-warm'}/",
            "--source-uri", servers.source.uri, "--source-db", DB,
            "--target-uri", servers.target.uri]
    m = run_measured([warm], cwd=work, log_dir=work / "logs", name="warm-up", env=clean_env())
    if not m.ok:
        raise RuntimeError(f"warm-up migrate failed: {m.stderr_tail}")
    with MongoClient(servers.target.uri) as client:
        client.drop_database(DB)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=["ferretdb", "mongojava"], default="ferretdb")
    parser.add_argument("--total", type=int, default=200_000)
    parser.add_argument("--collections", type=int, default=12)
    parser.add_argument("--parallel-collections", type=int, default=2)
    parser.add_argument("--doc-bytes", type=int, default=300)
    parser.add_argument("--variant", action="append", default=[], metavar="FLAGS",
                        help="also run dataworks migrate with these extra flags, "
                             "e.g. --variant='--parallel-cursors 1' (repeatable)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="each round runs every contender; even rounds in reverse order")
    args = parser.parse_args(argv)
    plan = sizes(args.total, args.collections)
    started = time.time()
    load = psutil.getloadavg()
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}: cpus {psutil.cpu_count()}, load "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, server {args.server}, "
          f"{args.collections} collections {plan}, ~{args.doc_bytes} B", flush=True)
    try:
        tools: dict[str, str] | None = ensure_mongo_tools()
        tools_note = f"mongodump/mongorestore {version(Path(tools['mongodump']))}"
    except (ToolsUnavailable, OSError) as exc:
        tools, tools_note = None, f"not measured ({exc})"
    print(f"mongodump | mongorestore: {tools_note}", flush=True)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="dataworks-dbbench-") as tmp:
        work = Path(tmp)
        with Servers(work / "servers", kind=args.server) as servers:
            src, dst = servers.source.uri, servers.target.uri
            asyncio.run(_load(src, plan, args.doc_bytes))
            if args.server == "mongojava":
                print("warm-up (unmeasured): scan of every source collection, one migrate of "
                      "the database", flush=True)
                _warm_up(servers, plan, work, 1000)
            contenders: dict[str, list[list[str]]] = {}
            for r in range(1, args.rounds + 1):
                for v, flags in enumerate(["", *args.variant]):
                    label = f", {flags}" if flags else ""
                    contenders[f"dataworks migrate (database run{label})"] = [[
                        *dataworks_argv(), "migrate", "--profile", "data-migration", "--quiet",
                        "--verify", "none", "--checkpoint-store",
                        f"file:{work / f'ckpt-{r}-{v}'}/", "--source-uri", src,
                        "--source-db", DB, "--target-uri", dst,
                        "--parallel-collections", str(args.parallel_collections),
                        *flags.split()]]
                if tools is not None:
                    contenders["mongodump --archive | mongorestore --archive -j 4"] = [
                        [tools["mongodump"], "--uri", src, "--db", DB, "--archive"],
                        [tools["mongorestore"], "--uri", dst, "--archive",
                         "--numParallelCollections", "4"]]
                order = list(contenders.items())
                if r % 2 == 0:
                    order.reverse()
                for name, argvs in order:
                    print(f"round {r}: {name}", flush=True)
                    m, servers_cpu = step(servers, lambda argvs=argvs, name=name: run_measured(
                        argvs, cwd=work, log_dir=work / "logs",
                        name=f"{r}-{len(rows)}", env=clean_env(), timeout=3600))
                    problem = "" if m.ok else f"exit {m.returncodes}: {m.stderr_tail}"
                    problem = problem or _exact(src, dst, plan)
                    rows.append({
                        "round": r, "name": name, "docs": args.total,
                        "seconds": round(m.seconds, 2),
                        "docs_per_s": round(args.total / m.seconds, 1),
                        "client_cpu_s": round(m.cpu_seconds, 2),
                        "client_peak_rss_mb": round(m.peak_rss_bytes / 1e6, 1),
                        "source_server_cpu_s": round(servers_cpu[0], 2),
                        "target_server_cpu_s": round(servers_cpu[1], 2),
                        "load_before": [round(x, 2) for x in m.load_before],
                        "exact": not problem, "problem": problem,
                        "argv": [" ".join(a) for a in m.argv]})
                    print(json.dumps(rows[-1]), flush=True)
    print("\n| round | contender | documents | docs/s | s | client CPU s | client peak RSS MB "
          "| source server CPU s | target server CPU s | exact | load before (1/5/15 min) |")
    print("|--:|--|--:|--:|--:|--:|--:|--:|--:|--|--|")
    for row in rows:
        name = row["name"].replace("|", "\\|")  # Markdown table cell
        print(f"| {row['round']} | {name} | {row['docs']:,} | {row['docs_per_s']:,.0f} "
              f"| {row['seconds']:,.1f} | {row['client_cpu_s']:,.1f} "
              f"| {row['client_peak_rss_mb']:,.0f} | {row['source_server_cpu_s']:,.1f} "
              f"| {row['target_server_cpu_s']:,.1f} | {'yes' if row['exact'] else 'NO'} "
              f"| {' / '.join(f'{x:.2f}' for x in row['load_before'])} |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / time.strftime("migrate-database-%Y%m%d-%H%M%S.json", time.gmtime(started))
    out.write_text(json.dumps({
        "command": "python -m bench.migrate_database "
                   + " ".join(argv if argv is not None else sys.argv[1:]),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "machine": machine_info(), "load_average_at_start": load,
        "load_average_at_end": psutil.getloadavg(), "server": args.server,
        "collections": plan, "doc_bytes": args.doc_bytes, "mongo_tools": tools_note,
        "rows": rows}, indent=1))
    print(f"JSON: {out}", flush=True)
    return 0 if rows and all(r["exact"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
