#!/usr/bin/env python3
"""Generation throughput: dry run, into a local FerretDB, and that server's own ceiling.

    .venv/bin/python bench/bench_generate.py [--dry-total 300000] [--server-total 20000]
                                             [--workers 2] [--write-workers 4] [--uri URI]

Prints docs/s for the volvo generator and the service-order template (dry run and into the
server), the rate at which the same server accepts *pre-encoded* volvo batches with the same
insert concurrency (the ceiling a generator can at best reach), the ratio, and peak memory
(this process plus its worker processes). Without --uri a FerretDB is started on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

import psutil

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (
    TEMPLATE,
    VOLVO,
    PeakMemory,
    encoded_batches,
    insert_raw,
    raw_documents,
)
from dataworks.config.settings import load_settings
from dataworks.generators.run import generate


def settings_for(uri: str, collection: str, batch_size: int):  # type: ignore[no-untyped-def]
    return load_settings(overrides={"gen_db_connection_string": uri, "gen_db_name": "bench",
                                    "gen_db_collection": collection, "gen_batch_size": batch_size,
                                    "gen_db_max_pool_size": 50})


async def ceiling(uri: str, total: int, batch_size: int, write_workers: int) -> float:
    """Insert pre-built RawBSONDocument batches only: the server's (and driver's) ceiling."""
    blobs = encoded_batches(VOLVO, seed=123, total=total, batch_size=batch_size)
    batches = [raw_documents(blob) for blob in blobs]
    seconds = await insert_raw(uri, "bench", "ceiling", batches, write_workers)
    return total / seconds


async def run_one(label: str, uri: str, source: str, total: int, args: argparse.Namespace,
                  dry_run: bool) -> float:
    settings = settings_for(uri, f"gen_{label}", args.batch_size)
    with PeakMemory() as memory:
        report = await generate(settings, source, total=total, seed=1, workers=args.workers,
                                write_workers=args.write_workers, dry_run=dry_run,
                                drop=not dry_run)
    where = "dry run" if dry_run else "into server"
    print(f"{label:<9} {where:<12} {report.docs_per_second:>10,.0f} docs/s "
          f"{report.mb_per_second:>7,.1f} MB/s  {total:>9,} docs in {report.seconds:6.1f}s  "
          f"peak memory {memory.peak / 1e6:,.0f} MB (main + workers)")
    return report.docs_per_second


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-total", type=int, default=300_000)
    parser.add_argument("--server-total", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--write-workers", type=int, default=4)
    parser.add_argument("--uri", help="a running server (default: start a FerretDB)")
    parser.add_argument("--skip-server", action="store_true")
    args = parser.parse_args()
    print(f"cpus {psutil.cpu_count()}, load average {psutil.getloadavg()}, workers "
          f"{args.workers}, write workers {args.write_workers}, batch {args.batch_size}")
    await run_one("volvo", "mongodb://127.0.0.1:1/", VOLVO, args.dry_total, args, True)
    await run_one("template", "mongodb://127.0.0.1:1/", TEMPLATE, args.dry_total, args, True)
    if args.skip_server:
        return
    server = None
    uri = args.uri
    if uri is None:
        from dataworks.testing.ferretdb import FerretDBServer

        server = FerretDBServer(Path(tempfile.mkdtemp(prefix="bench-ferretdb-"))).start()
        uri = server.uri
    try:
        top = await ceiling(uri, args.server_total, args.batch_size, args.write_workers)
        print(f"{'ceiling':<9} {'pre-encoded':<12} {top:>10,.0f} docs/s  "
              f"(insert_many of ready RawBSONDocument batches, same concurrency)")
        volvo = await run_one("volvo", uri, VOLVO, args.server_total, args, False)
        await run_one("template", uri, TEMPLATE, args.server_total, args, False)
        print(f"volvo into server = {volvo / top:.0%} of the pre-encoded ceiling")
    finally:
        if server is not None:
            server.stop()
    print(f"load average after {psutil.getloadavg()} (other processes share these cores)")


if __name__ == "__main__":
    asyncio.run(main())
