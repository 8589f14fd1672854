"""DataWorks against the target's ceiling and mongodump | mongorestore, on the same servers.

    .venv/bin/python -m bench [--server ferretdb|mongojava] [--sizes 100000[,1000000]]
                              [--seed 42] [--profile-migrate]

For each size: two fresh local servers (source, target): FerretDB, or with `--server
mongojava` mongo-java-server in memory (its JVMs warmed up first: the ceiling's concurrency
sweep on the source before generating into it, one unmeasured scan of the source before
reading it, and the ceiling's sweep on the target); then, in this order,
1. `dataworks generate --dry-run` (no server: the generator alone);
2. `dataworks generate` into the source: this loads the data set (volvo generator, fixed seed);
3. the ceiling: the same documents pre-encoded, `insert_many` into the target at the best of
   a few concurrencies (python -m bench.ceiling, its own process);
4. the source's own read speed: one raw scan in natural order (what migrate reads from a
   server that cannot seek `_id` ranges, and what mongodump reads), in this process;
5. `dataworks migrate --verify none` with the default strategy (raw BSON pass-through) and
   with the volvo strategy (default transform workers, then `--transform-workers 0`), then
   the default strategy with the default `--verify count`;
   the bare copy (raw batches -> `insert_many`, best of 1/2/4 streams) on the same pair, and
   the transform stage alone (recorded volvo batches through 1 and 2 worker processes):
   `bench/client_limit.py`, ratios printed under the table;
6. `mongodump --archive | mongorestore --archive` from the source to the target, when the
   binaries can be had (bench.mongotools; without them the run says why and goes on).
Every command except the scans runs as a subprocess; wall time, CPU (wait4, with worker processes) and peak
RSS (sampled, all processes of the command's trees) are measured; target counts are checked
and the target collection is dropped after each copy. Prints a table and writes JSON to
bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Self

import psutil

from bench._common import (
    ROOT,
    VOLVO,
    VOLVO_STRATEGY,
    Measured,
    machine_info,
    run_measured,
    scan_raw,
)
from bench.mongotools import ToolsUnavailable, ensure_mongo_tools, version

DB = "bench"
SOURCE = "orders"
RESULTS = ROOT / "bench" / "results"
CLEAN_ENV_PREFIXES = ("FRAMEWORK_", "MIG_", "GEN_", "DATAWORKS_TEST_")
SOURCE_HEAP, TARGET_HEAP = "4g", "6g"  # mongo-java-server pair
# Live heap of mongo-java-server's memory backend per volvo document (1.2 GB per 100,000,
# measured with `jcmd PID GC.heap_info` after a full collection; ~12x the BSON size).
HEAP_PER_VOLVO_DOC = 12_000


def dataworks_argv() -> list[str]:
    script = Path(sys.executable).parent / "dataworks"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "dataworks"]


def clean_env() -> dict[str, str]:
    """No settings from the caller's environment: the profiles and flags below decide."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(CLEAN_ENV_PREFIXES)}
    env["PYTHONPATH"] = str(ROOT)
    return env


class Servers:
    """Source and target servers (FerretDB or mongo-java-server), fresh data folders; their
    CPU time is read per step."""

    def __init__(self, base: Path, kind: str = "ferretdb",
                 heaps: tuple[str, str] | None = None) -> None:
        self.kind = kind
        if kind == "mongojava":
            from dataworks.testing.mongojava import MongoJavaServer

            # In memory: the source holds the data set, the target one copy at a time (each
            # copy is dropped, and the heap collected, before the next step). `explain`: the
            # server says that an `_id` range is a full scan here, so migrate reads it in
            # natural order as it reads any such server (the tests run without it).
            source_heap, target_heap = heaps or (SOURCE_HEAP, TARGET_HEAP)
            self.source: Any = MongoJavaServer(base / "source", heap=source_heap, explain=True,
                                               fixed_heap=True)
            self.target: Any = MongoJavaServer(base / "target", heap=target_heap, explain=True,
                                               fixed_heap=True)
        else:
            from dataworks.testing.ferretdb import FerretDBServer

            self.source = FerretDBServer(base / "source")
            self.target = FerretDBServer(base / "target")

    def __enter__(self) -> Self:
        self.source.start()
        self.target.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.source.stop()
        self.target.stop()

    def settle(self) -> None:
        """A full garbage collection of both JVMs, before a measured step: the garbage a step
        leaves (a dropped copy: about 1.2 GB of heap per 100,000 volvo documents) is then not
        collected, and billed, during the next one. No-op for FerretDB."""
        jcmd = shutil.which("jcmd")
        if self.kind != "mongojava" or jcmd is None:
            return
        for server in (self.source, self.target):
            assert server.process is not None
            subprocess.run([jcmd, str(server.process.pid), "GC.run"], capture_output=True,
                           check=False, timeout=120)

    def cpu(self) -> tuple[float, float]:
        out = []
        for server in (self.source, self.target):
            assert server.process is not None
            times = psutil.Process(server.process.pid).cpu_times()
            out.append(times.user + times.system)
        return out[0], out[1]


def heaps_for(n: int, kind: str) -> tuple[tuple[str, str] | None, str]:
    """mongo-java-server heaps for n volvo documents, or why they do not fit this machine
    (the source holds the data set, the target one copy and the garbage of the last)."""
    if kind != "mongojava":
        return None, ""
    need = n * HEAP_PER_VOLVO_DOC / 2**30
    used = need * 1.3 + need * 1.6  # the data set; one copy and the last one's garbage
    available = psutil.virtual_memory().available / 2**30
    if used > 0.8 * available:
        return None, (
            f"{n:,} volvo documents do not fit a mongo-java-server pair on this machine: its "
            f"memory backend holds ~{HEAP_PER_VOLVO_DOC / 1000:.0f} KB of heap per document "
            f"(~{need:.0f} GB per copy), so the pair needs ~{used:.0f} GB and "
            f"{available:.1f} GB are available; the 1,000,000-document figures come from the "
            "verify row's small documents instead")
    source = max(_gib(SOURCE_HEAP), -(-int(need * 1.3 * 2**30) // 2**30))
    target = max(_gib(TARGET_HEAP), -(-int(need * 1.6 * 2**30) // 2**30))
    return (f"{source}g", f"{target}g"), ""


def _gib(heap: str) -> int:
    return int(heap.rstrip("g"))


def count(uri: str, collection: str) -> int:
    """From collStats: FerretDB answers `count` (and so count_documents and
    estimated_document_count) by scanning and decoding every document."""
    from pymongo import MongoClient

    with MongoClient(uri) as client:
        return int(client[DB].command("collStats", collection)["count"])


def drop(uri: str, collection: str) -> None:
    from pymongo import MongoClient

    with MongoClient(uri) as client:
        client[DB].drop_collection(collection)


def row(name: str, docs: int, nbytes: int, seconds: float, cpu: float, peak: int | None,
        *, load: tuple[float, ...], servers_cpu: tuple[float, float] | None = None,
        ok: bool = True, note: str = "", **extra: Any) -> dict[str, Any]:
    per = 100_000 / docs
    out = {
        "name": name,
        "docs": docs,
        "seconds": round(seconds, 2),
        "docs_per_s": round(docs / seconds, 1),
        "mb_per_s": round(nbytes / 1e6 / seconds, 2),
        "client_cpu_s_per_100k": round(cpu * per, 2),
        "client_peak_rss_mb": None if peak is None else round(peak / 1e6, 1),
        "load_before": [round(x, 2) for x in load],
        "ok": ok,
        "note": note,
        **extra,
    }
    if servers_cpu is not None:
        out["source_server_cpu_s_per_100k"] = round(servers_cpu[0] * per, 2)
        out["target_server_cpu_s_per_100k"] = round(servers_cpu[1] * per, 2)
    return out


def measured_row(name: str, docs: int, nbytes: int, m: Measured,
                 servers_cpu: tuple[float, float] | None, note: str = "") -> dict[str, Any]:
    return row(name, docs, nbytes, m.seconds, m.cpu_seconds, m.peak_rss_bytes,
               load=m.load_before, servers_cpu=servers_cpu, ok=m.ok, note=note,
               argv=[" ".join(a) for a in m.argv],
               stderr_tail=[] if m.ok else m.stderr_tail)


def source_warm_up(kind: str, uri: str, args: argparse.Namespace) -> list[str] | None:
    """The command that warms the source JVM before `dataworks generate` writes into it: the
    ceiling's own sweep (`--sweep-docs` documents at each `--ceiling-concurrency`, then as many
    again), into collections it drops. The ceiling's insert runs on a target JVM warmed by that
    sweep; without this the generate row ran on a cold JVM (JIT compiling while inserting:
    10.3 server CPU-s per 100,000 volvo documents, against 6.7-7.9 warm) and its `x ceiling`
    compared a cold server with a warm one. None for FerretDB (no JIT)."""
    if kind != "mongojava":
        return None
    return [sys.executable, "-m", "bench.ceiling", "--uri", uri, "--db", DB,
            "--total", str(args.sweep_docs), "--seed", str(args.seed),
            "--batch-size", str(args.batch_size), "--concurrency", args.ceiling_concurrency,
            "--sweep-docs", str(args.sweep_docs)]


def step(servers: Servers, fn: Any) -> tuple[Any, tuple[float, float]]:
    servers.settle()
    before = servers.cpu()
    result = fn()
    after = servers.cpu()
    return result, (after[0] - before[0], after[1] - before[1])


def run_size(n: int, args: argparse.Namespace, tools: dict[str, str] | None,
             work: Path) -> list[dict[str, Any]]:
    logs = work / "logs"
    env = clean_env()
    dw = dataworks_argv()
    rows: list[dict[str, Any]] = []
    gen_common = ["--profile", "data-ingest", "--source", VOLVO, "--total", str(n),
                  "--seed", str(args.seed), "--batch-size", str(args.batch_size), "--quiet"]

    def say(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] n={n:,} {text} (load {psutil.getloadavg()[0]:.2f})",
              flush=True)

    heaps, _ = heaps_for(n, args.server)
    with Servers(work / "servers", args.server, heaps) as servers:
        src, dst = servers.source.uri, servers.target.uri

        say("generate --dry-run")
        dry = run_measured([[*dw, "generate", *gen_common, "--dry-run", "--uri",
                             "mongodb://127.0.0.1:1/", "--db", DB, "--collection", "dry"]],
                           cwd=work, log_dir=logs, name=f"{n}-generate-dry", env=env)

        warm = source_warm_up(args.server, src, args)
        if warm is not None:
            say("warm-up of the source JVM (unmeasured: the ceiling's sweep, as on the target)")
            warmed = run_measured([warm], cwd=ROOT, log_dir=logs, name=f"{n}-warm-source",
                                  env=env)
            if not warmed.ok:
                raise RuntimeError("source warm-up failed: " + "\n".join(warmed.stderr_tail))

        say("generate into the source (loads the data set)")
        gen, gen_servers = step(servers, lambda: run_measured(
            [[*dw, "generate", *gen_common, "--uri", src, "--db", DB, "--collection", SOURCE,
              "--drop"]], cwd=work, log_dir=logs, name=f"{n}-generate-server", env=env))
        loaded = count(src, SOURCE)
        if not gen.ok or loaded != n:
            raise RuntimeError(f"loading the source failed ({loaded:,} of {n:,}): "
                               + "\n".join(gen.stderr_tail))

        say("ceiling: pre-encoded insert_many into the target")
        ceiling_m, ceiling_servers = step(servers, lambda: run_measured(
            [[sys.executable, "-m", "bench.ceiling", "--uri", dst, "--db", DB, "--total", str(n),
              "--seed", str(args.seed), "--batch-size", str(args.batch_size),
              "--concurrency", args.ceiling_concurrency, "--sweep-docs", str(args.sweep_docs)]],
            cwd=ROOT, log_dir=logs, name=f"{n}-ceiling", env=env))
        if not ceiling_m.ok:
            raise RuntimeError("ceiling failed: " + "\n".join(ceiling_m.stderr_tail))
        ceiling = json.loads((logs / f"{n}-ceiling.out").read_text().strip().splitlines()[-1])
        nbytes = int(ceiling["bytes"])
        # Server CPU of the ceiling step includes the sweep: scale to the full insert's share.
        sweep_docs = ceiling["sweep_docs"] * len(ceiling["sweep_docs_per_s"])
        share = n / (n + sweep_docs)
        rows.append(row(
            f"ceiling: insert_many pre-encoded, {ceiling['concurrency']} concurrent", n, nbytes,
            ceiling["seconds"], ceiling["cpu_seconds"], None, load=ceiling_m.load_before,
            servers_cpu=(ceiling_servers[0] * share, ceiling_servers[1] * share),
            note="client CPU: the insert phase only; memory n/a (holds the whole data set)",
            kind="ceiling", concurrency=ceiling["concurrency"],
            sweep={str(k): round(v, 1) for k, v in ceiling["sweep_docs_per_s"].items()},
            sweep_docs=ceiling["sweep_docs"]))

        # What migrate reads from FerretDB (it cannot seek `_id` ranges) and what mongodump
        # reads: the bound of any copy from this source.
        label = "natural order (what migrate and mongodump read)"
        if args.server == "mongojava":
            # mongo-java-server seeks `_id` ranges, so migrate reads those; this scan is the
            # source's own read speed. A first, unmeasured scan warms the JVM.
            label = "natural order (the source's own read speed)"
            say("warm-up: one unmeasured scan of the source")
            asyncio.run(scan_raw(src, DB, SOURCE, sort=False, batch_size=args.batch_size))
        say(f"source read: raw scan {label}")
        load_now = psutil.getloadavg()
        cpu_before = time.process_time()
        (seconds, found, _), scan_servers = step(servers, lambda: asyncio.run(
            scan_raw(src, DB, SOURCE, sort=False, batch_size=args.batch_size)))
        rows.append(row(f"source read: raw scan, {label}", n, nbytes, seconds,
                        time.process_time() - cpu_before, None, load=load_now,
                        servers_cpu=scan_servers, ok=found == n,
                        note="in the bench process; memory n/a", kind="read-natural"))

        migrate_common = ["migrate", "--profile", "data-migration", "--source-uri", src,
                          "--source-db", DB, "--source-collection", SOURCE, "--target-uri", dst,
                          "--target-db", DB, "--drop-target", "--quiet"]
        runs = [("default strategy", "orders_dw", ["--verify", "none"]),
                ("volvo strategy", "orders_dw_volvo",
                 ["--strategy", VOLVO_STRATEGY, "--verify", "none"]),
                (IN_PROCESS_VOLVO, "orders_dw_volvo0",
                 ["--strategy", VOLVO_STRATEGY, "--transform-workers", "0", "--verify", "none"])]
        if not args.skip_verify_row:
            runs.append(("default strategy + default --verify count", "orders_dw_verified", []))
        for label, coll, extra in runs:
            # The pass-through row runs `--migrate-runs` times (the best is kept, every run's
            # rate is in the JSON): the bare copy it is held to is the best of three copies.
            tries = []
            for attempt in range(args.migrate_runs if label == "default strategy" else 1):
                say(f"dataworks migrate, {label}" + (f" (run {attempt + 1})" if attempt else ""))
                m, servers_cpu = step(servers, lambda coll=coll, extra=extra: run_measured(
                    [[*dw, *migrate_common, "--target-collection", coll, *extra]],
                    cwd=work, log_dir=logs, name=f"{n}-migrate-{coll}", env=env))
                copied = count(dst, coll)
                tries.append(measured_row(
                    f"dataworks migrate ({label})", n, nbytes, m, servers_cpu,
                    note="" if copied == n else f"target has {copied:,}")
                    | {"kind": "migrate" if "--verify" in extra else "migrate-verified",
                       "target_count": copied,
                       "tool_reported_load_s": reported_duration(
                           logs / f"{n}-migrate-{coll}.out")})
                tries[-1]["ok"] = tries[-1]["ok"] and copied == n
                drop(dst, coll)
            best = max(tries, key=lambda r: (r["ok"], r["docs_per_s"]))
            if len(tries) > 1:
                best["runs_docs_per_s"] = [r["docs_per_s"] for r in tries]
                best["name"] += f", best of {len(tries)} runs"
                best["note"] = (best["note"] + "; " if best["note"] else "") + (
                    "runs: " + " / ".join(f"{r['docs_per_s']:,.0f}" for r in tries)
                    + " docs/s")
            rows.append(best)

        rows += client_limit_rows(n, args, servers, src, dst, logs, env, say)

        if tools is not None:
            for workers in args.mongorestore_workers:
                say(f"mongodump | mongorestore (insertion workers {workers})")
                restore = [tools["mongorestore"], f"--uri={dst}", "--archive",
                           f"--nsFrom={DB}.{SOURCE}", f"--nsTo={DB}.orders_mt", "--drop",
                           f"--numInsertionWorkersPerCollection={workers}"]
                m, servers_cpu = step(servers, lambda restore=restore, workers=workers: run_measured(
                    [[tools["mongodump"], f"--uri={src}", f"--db={DB}",
                      f"--collection={SOURCE}", "--archive"], restore],
                    cwd=work, log_dir=logs, name=f"{n}-mongotools-{workers}", env=env))
                copied = count(dst, "orders_mt")
                rows.append(measured_row(
                    f"mongodump | mongorestore (-j {workers})", n, nbytes, m, servers_cpu,
                    note="" if copied == n else f"target has {copied:,}")
                    | {"kind": "mongotools", "target_count": copied,
                       "insertion_workers": workers})
                rows[-1]["ok"] = rows[-1]["ok"] and copied == n
                drop(dst, "orders_mt")

        rows.append(measured_row("dataworks generate --dry-run", n, nbytes, dry, None)
                    | {"kind": "generate-dry"})
        rows.append(measured_row("dataworks generate into the server", n, nbytes, gen,
                                 gen_servers) | {"kind": "generate"})

        if args.profile_migrate:
            say("py-spy: profiling dataworks migrate (default strategy), not timed")
            rows_profile = profile_migrate(n, dw, migrate_common, work, logs, env, dst)
            rows.append({"name": "profile", "kind": "profile", **rows_profile})
    add_ratios(rows)
    return rows


IN_PROCESS_VOLVO = "volvo strategy, --transform-workers 0"
STAGE_MAX_DOCS = 200_000  # the transform stage holds its batches in memory


def client_limit_rows(n: int, args: argparse.Namespace, servers: Servers, src: str, dst: str,
                      logs: Path, env: dict[str, str], say: Any) -> list[dict[str, Any]]:
    """The bare copy on the same pair, and the transform stage alone (bench/client_limit.py)."""
    rows = []
    say("bare copy: find_raw_batches -> insert_many RawBSONDocuments, 1/2/4 streams")
    m, servers_cpu = step(servers, lambda: run_measured(
        [[sys.executable, "-m", "bench.client_limit", "bare-copy", "--source", src, "--target",
          dst, "--db", DB, "--collection", SOURCE, "--target-collection", "orders_bare",
          "--batch-size", str(args.batch_size)]],
        cwd=ROOT, log_dir=logs, name=f"{n}-bare-copy", env=env))
    if m.ok:
        best = json.loads((logs / f"{n}-bare-copy.out").read_text().strip().splitlines()[-1])
        share = 1 / len(best["runs"])  # the servers' CPU over the three copies, per copy
        rows.append(row(
            f"bare copy: raw batches -> insert_many, best of 1/2/4 streams ({best['streams']})",
            n, best["bytes"], best["seconds"], best["cpu_seconds"], m.peak_rss_bytes,
            load=m.load_before, servers_cpu=(servers_cpu[0] * share, servers_cpu[1] * share),
            ok=best["target_count"] == n, kind="bare-copy", streams=best["streams"],
            by_streams={r["streams"]: round(r["docs_per_s"], 1) for r in best["runs"]},
            note="client CPU: the best copy only; peak RSS over the three"))
    else:
        rows.append(measured_row("bare copy", n, 0, m, servers_cpu) | {"kind": "bare-copy"})

    stage_n = min(n, STAGE_MAX_DOCS)
    say(f"transform stage alone: {stage_n:,} recorded volvo documents, in-process, 1 and 2 "
        "workers")
    m = run_measured([[sys.executable, "-m", "bench.client_limit", "transform-stage",
                       "--total", str(stage_n), "--seed", str(args.seed),
                       "--batch-size", str(args.batch_size)]],
                     cwd=ROOT, log_dir=logs, name=f"{n}-transform-stage", env=env)
    if not m.ok:
        rows.append(measured_row("transform stage alone", stage_n, 0, m, None)
                    | {"kind": "transform-stage"})
        return rows
    stage = json.loads((logs / f"{n}-transform-stage.out").read_text().strip().splitlines()[-1])
    for r in stage["runs"]:
        label = "in-process" if r["workers"] == 0 else \
            f"{r['workers']} worker process{'es' if r['workers'] > 1 else ''}"
        rows.append(row(
            f"transform stage alone (volvo), {label}", stage_n, stage["bytes"], r["seconds"],
            r.get("main_cpu_seconds", r["seconds"]), None, load=m.load_before,
            kind="transform-stage", workers=r["workers"],
            note="client CPU: the main process only (workers not included); nothing read or "
            "written; workers started before the clock"))
    return rows


def verify_rows(total: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The hash verification row and its reference (bench/bench_verify.py, its own pair of
    servers and process), as table rows with their ratios."""
    print(f"[{time.strftime('%H:%M:%S')}] verify row: {total:,} identical small documents on "
          f"a pair of their own (load {psutil.getloadavg()[0]:.2f})", flush=True)
    logs = Path(tempfile.mkdtemp(prefix="dataworks-bench-verify-"))
    m = run_measured([[sys.executable, "-m", "bench.bench_verify", "--server", args.server,
                       "--total", str(total), "--json"]], cwd=ROOT, log_dir=logs,
                     name="verify", env=clean_env())
    lines = (logs / "verify.out").read_text().strip().splitlines()
    if not m.ok or not lines:
        shutil.rmtree(logs, ignore_errors=True)
        return [row("dataworks verify --mode hash", total, 0, m.seconds, m.cpu_seconds, None,
                    load=m.load_before, ok=False, kind="verify-hash",
                    note=" | ".join(m.stderr_tail))]
    shutil.rmtree(logs, ignore_errors=True)
    found = json.loads(lines[-1])
    rows = []
    for r in found["rows"]:
        rows.append(row(r["name"], r["docs"], r["docs"] * found["doc_bytes"], r["seconds"],
                        r["cpu_seconds"], r["peak_rss_bytes"], load=tuple(r["load_before"]),
                        servers_cpu=tuple(r["servers_cpu"]), ok=r["ok"], kind=r["kind"],
                        note="in the bench's process; memory n/a"
                        if r["peak_rss_bytes"] is None else "",
                        **({"argv": r["argv"]} if "argv" in r else {})))
    scans = {r["kind"]: r for r in rows if r["kind"].startswith("verify-scans") and r["ok"]}
    for r in rows:
        if r["kind"] != "verify-hash" or not r["ok"]:
            continue
        for kind, key in (("verify-scans", "vs_parallel_scans"),
                          ("verify-scans-sorted", "vs_parallel_sorted_scans")):
            if kind in scans:
                r[key] = round(r["docs_per_s"] / scans[kind]["docs_per_s"], 2)
    migrated = [r for r in rows if r["kind"] == "verify-migrate" and r["ok"]]
    if len(migrated) == 2 and all(r["client_peak_rss_mb"] for r in migrated):
        small, large = migrated
        large["rss_vs_tenth"] = round(large["client_peak_rss_mb"] / small["client_peak_rss_mb"],
                                      2)
    return rows


def verify_table(total: int, rows: list[dict[str, Any]]) -> str:
    return f"verify row ({total:,} identical small documents, a pair of its own)\n" + table(
        total, rows)


def memory_summary(results: dict[str, Any]) -> str:
    """Peak RSS of all client processes, per size and in the verify row (goal: < 300 MB,
    flat from 100,000 to 1,000,000 documents)."""
    lines = ["client peak memory (all processes of each command, MB):"]
    for n, rows in results["sizes"].items():
        peaks = [(r["client_peak_rss_mb"], r["name"]) for r in rows
                 if r.get("client_peak_rss_mb") is not None]
        if peaks:
            top = max(peaks)
            lines.append(f"- n={int(n):,} volvo: highest {top[0]:.0f} ({top[1]})")
    for r in results.get("verify") or []:
        if r.get("client_peak_rss_mb") is not None:
            lines.append(f"- {r['name']}: {r['client_peak_rss_mb']:.0f}")
    return "\n".join(lines)


def reported_duration(path: Path) -> float | None:
    """The load phase as `dataworks migrate` reports it (its summary's duration row)."""
    match = re.search(r"duration\s*\S\s*([\d.,]+) s", path.read_text(errors="replace"))
    return float(match.group(1).replace(",", "")) if match else None


def profile_migrate(n: int, dw: list[str], migrate_common: list[str], work: Path, logs: Path,
                    env: dict[str, str], dst: str) -> dict[str, Any]:
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(pyspy).exists():
        return {"error": "py-spy is not installed (pip install py-spy)"}
    raw = RESULTS / f"profile-migrate-{n}.txt"
    RESULTS.mkdir(parents=True, exist_ok=True)
    m = run_measured([[pyspy, "record", "--rate", "100", "--nonblocking", "--format", "raw",
                       "-o", str(raw), "--", *dw, *migrate_common,
                       "--target-collection", "orders_profiled", "--verify", "none"]],
                     cwd=work, log_dir=logs, name=f"{n}-profile", env=env)
    drop(dst, "orders_profiled")
    if not raw.is_file():
        return {"error": "py-spy wrote no profile: " + " | ".join(m.stderr_tail)}
    return {"file": str(raw.relative_to(ROOT)), **summarize_profile(raw)}


# The first area whose needle is in a sampled stack gets the sample.
AREAS: list[tuple[str, tuple[str, ...]]] = [
    ("startup: imports", ("_find_and_load",)),
    ("strategy transform (user code)", ("apply_transform",)),
    ("insert_many: encode, send, await reply", ("insert_many",)),
    ("bson.decode_all of read batches", ("decode_all",)),
    ("source cursor: getMore, reply parsing", ("AsyncCursor", "find_raw_batches")),
    ("checkpoint saves", ("_save", "checkpoint")),
    ("monitoring: metrics, progress, psutil", ("psutil", "_pslinux", "monitoring", "Metrics")),
    ("asyncio event loop, sockets", ("_run_once", "select", "selector_events", "events.py")),
]


def summarize_profile(path: Path, top: int = 15) -> dict[str, Any]:
    """Self time by function (the leaf of each sampled stack) and time inside a few areas."""
    leaves: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not samples.isdigit():
            continue
        k = int(samples)
        total += k
        frames = stack.split(";")
        leaves[_short(frames[-1])] += k
        for area, needles in AREAS:
            if any(needle in stack for needle in needles):
                areas[area] += k
                break
        else:
            areas["other"] += k
    return {
        "samples": total,
        "self_top": [(name, k, round(100 * k / max(1, total), 1))
                     for name, k in leaves.most_common(top)],
        "areas": {name: round(100 * k / max(1, total), 1) for name, k in areas.most_common()},
    }


def _short(frame: str) -> str:
    """'func (path/to/file.py:123)' -> 'func (file.py)'."""
    name, _, where = frame.partition(" (")
    file = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({Path(file).name})" if file else name


def add_ratios(rows: list[dict[str, Any]]) -> None:
    _add_client_limit_ratios(rows)
    ceiling = next((r for r in rows if r.get("kind") == "ceiling"), None)
    read = next((r for r in rows if r.get("kind") == "read-natural" and r["ok"]), None)
    tools = [r for r in rows if r.get("kind") == "mongotools" and r["ok"]]
    best_tools = max(tools, key=lambda r: r["docs_per_s"]) if tools else None
    for r in rows:
        if r.get("kind") in ("migrate", "migrate-verified", "generate") and ceiling is not None:
            r["vs_ceiling"] = round(r["docs_per_s"] / ceiling["docs_per_s"], 2)
        if r.get("kind") in ("migrate", "migrate-verified") and read:
            # Reading overlaps writing, so a copy cannot beat the source's own scan.
            r["vs_source_read"] = round(r["docs_per_s"] / read["docs_per_s"], 2)
        if r.get("kind") in ("migrate", "migrate-verified") and best_tools is not None:
            r["vs_mongotools"] = round(r["docs_per_s"] / best_tools["docs_per_s"], 2)
            r["cpu_vs_mongotools"] = round(
                r["client_cpu_s_per_100k"] / best_tools["client_cpu_s_per_100k"], 2)
            r["mongotools_reference"] = best_tools["name"]


def total_cpu(r: dict[str, Any]) -> float | None:
    """Client and both servers' CPU-seconds per 100,000 documents (None: not all known)."""
    parts = [r.get("client_cpu_s_per_100k"), r.get("source_server_cpu_s_per_100k"),
             r.get("target_server_cpu_s_per_100k")]
    return None if None in parts else sum(parts)


def _add_client_limit_ratios(rows: list[dict[str, Any]]) -> None:
    def find(predicate: Any) -> dict[str, Any] | None:
        return next((r for r in rows if r.get("ok") and predicate(r)), None)

    bare = find(lambda r: r.get("kind") == "bare-copy")
    one = find(lambda r: r.get("kind") == "transform-stage" and r.get("workers") == 1)
    in_process = find(lambda r: r["name"].endswith(f"({IN_PROCESS_VOLVO})"))
    for r in rows:
        if r.get("kind") in ("migrate", "migrate-verified") and bare is not None:
            r["vs_bare_copy"] = round(r["docs_per_s"] / bare["docs_per_s"], 2)
            # On a shared machine the rates follow the CPU share each run got; the CPU a
            # copy costs (client and both servers, per document) moves much less.
            if total_cpu(r) and total_cpu(bare):
                r["total_cpu_vs_bare_copy"] = round(total_cpu(r) / total_cpu(bare), 2)
        if r.get("kind") == "transform-stage" and one is not None:
            r["vs_one_worker"] = round(r["docs_per_s"] / one["docs_per_s"], 2)
        if r["name"] == "dataworks migrate (volvo strategy)" and in_process is not None:
            r["vs_in_process"] = round(r["docs_per_s"] / in_process["docs_per_s"], 2)


RATIO_TEXT = {"vs_bare_copy": "x bare copy",
              "total_cpu_vs_bare_copy": "x the bare copy's CPU per document (client + servers)",
              "vs_one_worker": "x one worker",
              "vs_in_process": "x --transform-workers 0",
              "vs_parallel_scans": "x two parallel raw scans (natural order)",
              "vs_parallel_sorted_scans": "x two parallel raw scans (sorted by _id)",
              "rss_vs_tenth": "x the peak RSS at a tenth of the documents",
              "vs_mongotools": "x mongodump | mongorestore",
              "cpu_vs_mongotools": "x mongo-tools' client CPU per document"}


def ratio_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The client-limit ratios (issue 19), one line per row that has one."""
    out = []
    for r in rows:
        found = [f"{r[k]:.2f} {text}" for k, text in RATIO_TEXT.items() if k in r]
        if found:
            out.append(f"{r['name']}: {', '.join(found)}")
    return out


def table(n: int, rows: list[dict[str, Any]]) -> str:
    head = (f"{'n=' + format(n, ','):<62} {'docs/s':>8} {'MB/s':>6} {'s':>7} "
            f"{'CPU s/100k':>10} {'srcCPU':>6} {'dstCPU':>6} {'RSS MB':>7} {'xceil':>6} "
            f"{'xread':>5} {'xtools':>6} {'CPUxtools':>9} "
            f"{'load':>5}")
    lines = [head, "-" * len(head)]
    for r in rows:
        if r.get("kind") == "profile":
            continue
        rss = "n/a" if r["client_peak_rss_mb"] is None else f"{r['client_peak_rss_mb']:.0f}"
        flag = "" if r["ok"] else "  FAILED"

        def ratio(key: str, r: dict[str, Any] = r) -> str:
            return f"{r[key]:.2f}" if key in r else ""

        lines.append(
            f"{r['name'][:62]:<62} {r['docs_per_s']:>8,.0f} {r['mb_per_s']:>6.1f} "
            f"{r['seconds']:>7.1f} {r['client_cpu_s_per_100k']:>10.1f} "
            f"{server_cpu(r, 'source'):>6} {server_cpu(r, 'target'):>6} {rss:>7} "
            f"{ratio('vs_ceiling'):>6} {ratio('vs_source_read'):>5} "
            f"{ratio('vs_mongotools'):>6} "
            f"{ratio('cpu_vs_mongotools'):>9} {r['load_before'][0]:>5.2f}{flag}")
    return "\n".join([*lines, "", *ratio_lines(rows)])


def server_cpu(r: dict[str, Any], side: str) -> str:
    value = r.get(f"{side}_server_cpu_s_per_100k")
    return "" if value is None else f"{value:.1f}"


def markdown(n: int, rows: list[dict[str, Any]]) -> str:
    """The same table as `table`, as Markdown for docs/BENCHMARKS.md."""
    out = [(f"| n={n:,} | docs/s | MB/s | s | client CPU s/100k | source server CPU s/100k "
            "| target server CPU s/100k | client peak RSS MB "
           "| x ceiling | x source read | x mongo-tools | CPU x mongo-tools | load before |"),
           "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in rows:
        if r.get("kind") == "profile":
            continue
        rss = "n/a" if r["client_peak_rss_mb"] is None else f"{r['client_peak_rss_mb']:.0f}"

        def ratio(key: str, r: dict[str, Any] = r) -> str:
            return f"{r[key]:.2f}" if key in r else ""

        out.append(
            f"| {r['name'].replace('|', chr(92) + '|')}{'' if r['ok'] else ' **FAILED**'} "
            f"| {r['docs_per_s']:,.0f} "
            f"| {r['mb_per_s']:.1f} | {r['seconds']:.1f} | {r['client_cpu_s_per_100k']:.1f} "
            f"| {server_cpu(r, 'source')} | {server_cpu(r, 'target')} | {rss} "
            f"| {ratio('vs_ceiling')} | {ratio('vs_source_read')} "
            f"| {ratio('vs_mongotools')} | {ratio('cpu_vs_mongotools')} "
            f"| {r['load_before'][0]:.2f} |")
    extra = ratio_lines(rows)
    return "\n".join([*out, *([""] + [f"- {line}" for line in extra] if extra else [])])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=["ferretdb", "mongojava"], default="ferretdb",
                        help="the pair of local servers to run on (default ferretdb)")
    parser.add_argument("--sizes", default="100000",
                        help="comma-separated document counts (default 100000; the issue's "
                        "full set is 100000,1000000, which takes hours on FerretDB/SQLite)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--batch-size", type=int, default=1000,
                        help="generation batch size (fixes the data set with the seed)")
    parser.add_argument("--ceiling-concurrency", default="1,2,4,8")
    parser.add_argument("--sweep-docs", type=int, default=20_000,
                        help="documents per concurrency level when looking for the best one")
    parser.add_argument("--mongorestore-workers", default="4",
                        help="--numInsertionWorkersPerCollection values to run, comma-separated "
                        "(default 4; mongorestore's own default is 1)")
    parser.add_argument("--skip-verify-row", action="store_true",
                        help="skip the extra migrate run with the default --verify count")
    parser.add_argument("--skip-mongo-tools", action="store_true")
    parser.add_argument("--profile-migrate", action="store_true",
                        help="also run migrate once under py-spy (not timed) and summarise")
    parser.add_argument("--migrate-runs", type=int, default=2,
                        help="runs of the pass-through migrate row; the best is kept (the bare "
                        "copy is the best of three copies)")
    parser.add_argument("--verify-docs", type=int, default=None,
                        help="identical small documents for the hash verification row, on a "
                        "pair of its own (default: the largest size; 0 skips the row)")
    parser.add_argument("--keep", action="store_true", help="keep the servers' data folders")
    args = parser.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s]
    args.mongorestore_workers = [int(w) for w in args.mongorestore_workers.split(",") if w]

    started = time.time()
    machine = machine_info()
    load = psutil.getloadavg()
    print(f"machine: {machine['nproc']} CPUs, {machine['cpu_model']}, "
          f"{machine['memory_gib']} GiB; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")

    tools: dict[str, str] | None = None
    tools_note = "skipped (--skip-mongo-tools)"
    if not args.skip_mongo_tools:
        try:
            tools = ensure_mongo_tools()
            tools_note = f"mongodump/mongorestore {version(Path(tools['mongodump']))}"
        except ToolsUnavailable as exc:
            tools_note = f"unavailable: {exc}"
            print(f"mongo-tools {tools_note}; continuing without them", file=sys.stderr)
    print(f"mongo-tools: {tools_note}")

    results: dict[str, Any] = {
        "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "machine": machine,
        "load_average_at_start": load,
        "mongo_tools": tools_note,
        "server": args.server,
        "settings": {"seed": args.seed, "batch_size": args.batch_size,
                     "migrate_profile": "data-migration", "generate_profile": "data-ingest",
                     "ceiling_concurrency": args.ceiling_concurrency,
                     "mongorestore_workers": args.mongorestore_workers},
        "sizes": {},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out_path = RESULTS / time.strftime("bench-%Y%m%d-%H%M%S.json", time.localtime(started))
    tables = []
    results["skipped"] = {}
    for n in sizes:
        _, unfit = heaps_for(n, args.server)
        if unfit:
            print(f"\nn={n:,}: volvo rows skipped: {unfit}\n", flush=True)
            results["skipped"][str(n)] = unfit
            tables.append(f"n={n:,}: volvo rows skipped: {unfit}")
            continue
        work = Path(tempfile.mkdtemp(prefix=f"dataworks-bench-{n}-"))
        try:
            rows = run_size(n, args, tools, work)
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
        results["sizes"][str(n)] = rows
        tables.append(table(n, rows))
        print("\n" + tables[-1] + "\n", flush=True)
        for r in rows:
            if r.get("kind") == "profile":
                print(json.dumps(r, indent=1))
        out_path.write_text(json.dumps(results, indent=1))  # partial results survive
    verify_docs = max(sizes) if args.verify_docs is None else args.verify_docs
    if verify_docs:
        results["verify"] = verify_rows(verify_docs, args)
        tables.append(verify_table(verify_docs, results["verify"]))
        print("\n" + tables[-1] + "\n", flush=True)
        out_path.write_text(json.dumps(results, indent=1))
    tables.append(memory_summary(results))
    results["seconds"] = round(time.time() - started, 1)
    results["load_average_at_end"] = psutil.getloadavg()
    out_path.write_text(json.dumps(results, indent=1))
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=1))
    print("\n\n".join(tables))
    markdown_path = out_path.with_suffix(".md")
    parts = [markdown(int(n), rows) for n, rows in results["sizes"].items()]
    parts += [f"n={int(n):,}: volvo rows skipped: {why}" for n, why in results["skipped"].items()]
    if results.get("verify"):
        parts.append(markdown(verify_docs, results["verify"]))
    parts.append(memory_summary(results))
    markdown_path.write_text("\n\n".join(parts) + "\n")
    print(f"\nwhole run {results['seconds']:.0f}s; load average at end "
          f"{results['load_average_at_end'][0]:.2f}; JSON: {out_path.relative_to(ROOT)} "
          f"(Markdown table beside it)")
    print("xceil = docs/s / ceiling docs/s; xread = docs/s / source scan docs/s; "
          "xtools = docs/s / best mongodump|mongorestore docs/s; CPUxtools = client CPU per "
          "document / that of mongodump+mongorestore")
    return 0 if all(r.get("ok", True) for rows in results["sizes"].values() for r in rows) else 1
