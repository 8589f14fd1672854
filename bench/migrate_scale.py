"""Does `dataworks migrate` stay flat in memory from 100,000 to 1,000,000 documents?

    .venv/bin/python -m bench.migrate_scale [--sizes 100000,1000000] [--doc-bytes 300]
    .venv/bin/python -m bench.migrate_scale --volvo     # the bench's data set (~1.7 KB each)

For each size: two fresh FerretDB servers; the source is loaded with small documents
(~`--doc-bytes` each: small so that a million fit a short run on FerretDB, which reads
about 1.4k volvo documents/s) or, with `--volvo`, with `dataworks generate` from the volvo
generator (seed 42); then `dataworks migrate --verify none` runs as a subprocess
and its documents/s, client CPU and peak RSS (sampled every 100 ms) are printed, with the
target count checked. The volvo data set and mongo-tools are in `python -m bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

import bson
import psutil
from bson.raw_bson import RawBSONDocument

from bench._common import VOLVO, run_measured
from bench.run import DB, SOURCE, Servers, clean_env, count, dataworks_argv


def small_documents(total: int, doc_bytes: int, batch: int = 10_000) -> list[list[RawBSONDocument]]:
    padding = "x" * max(0, doc_bytes - 120)
    batches = []
    for start in range(0, total, batch):
        batches.append([
            RawBSONDocument(bson.encode({
                "_id": i, "n": i, "kind": ("a", "b", "c")[i % 3], "price": i * 0.25,
                "tags": ["t1", "t2"], "nested": {"k": i % 97, "pad": padding},
            }))
            for i in range(start, min(total, start + batch))
        ])
    return batches


def run_size(n: int, doc_bytes: int, work: Path, *, volvo: bool = False) -> dict[str, float]:
    with Servers(work / f"servers-{n}") as servers:
        if volvo:
            _load_volvo(servers.source.uri, n, work)
        else:
            batches = small_documents(n, doc_bytes)
            asyncio.run(_load(servers.source.uri, batches))
            del batches
        argv = [*dataworks_argv(), "migrate", "--profile", "data-migration", "--quiet",
                "--verify", "none", "--checkpoint-store", f"file:{work / f'ckpt-{n}.json'}",
                "--source-uri", servers.source.uri, "--source-db", DB,
                "--source-collection", SOURCE, "--target-uri", servers.target.uri,
                "--target-db", DB, "--target-collection", SOURCE]
        measured = run_measured([argv], cwd=work, log_dir=work / "logs", name=f"migrate-{n}",
                                env=clean_env(), timeout=3000)
        if not measured.ok:
            raise RuntimeError(f"migrate failed: {measured.stderr_tail}")
        copied = count(servers.target.uri, SOURCE)
        if copied != n:
            raise RuntimeError(f"target holds {copied} documents, expected {n}")
    return {
        "documents": n,
        "seconds": measured.seconds,
        "docs_per_s": n / measured.seconds,
        "cpu_s_per_100k": measured.cpu_seconds * 100_000 / n,
        "peak_rss_mb": measured.peak_rss_bytes / 1e6,
        "load_before": measured.load_before[0],
    }


def _load_volvo(uri: str, n: int, work: Path) -> None:
    argv = [*dataworks_argv(), "generate", "--profile", "data-ingest", "--source", VOLVO,
            "--total", str(n), "--seed", "42", "--batch-size", "1000", "--quiet", "--uri", uri,
            "--db", DB, "--collection", SOURCE]
    loaded = run_measured([argv], cwd=work, log_dir=work / "logs", name=f"generate-{n}",
                          env=clean_env(), timeout=3000)
    if not loaded.ok:
        raise RuntimeError(f"loading the volvo data set failed: {loaded.stderr_tail}")


async def _load(uri: str, batches: list[list[RawBSONDocument]]) -> None:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(uri)
    try:
        for batch in batches:
            await client[DB][SOURCE].insert_many(batch, ordered=False)
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--doc-bytes", type=int, default=300)
    parser.add_argument("--volvo", action="store_true",
                        help="load volvo service orders (seed 42) instead of small documents")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    kind = "volvo service orders (seed 42)" if args.volvo else f"~{args.doc_bytes} B"
    print(f"cpus {psutil.cpu_count()}, load {psutil.getloadavg()[0]:.2f}, documents {kind}",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="dataworks-scale-") as tmp:
        for n in sizes:
            r = run_size(n, args.doc_bytes, Path(tmp), volvo=args.volvo)
            print(f"migrate {r['documents']:>9,} docs: {r['docs_per_s']:>7,.0f} docs/s "
                  f"in {r['seconds']:6.1f} s, client CPU {r['cpu_s_per_100k']:.1f} s/100k, "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB (load before {r['load_before']:.2f})",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
