"""Helpers shared by the benchmarks: data set batches, the raw-insert ceiling, process
measurement (CPU and peak RSS of client process trees) and a description of the machine.

The ceiling is the rate at which a server accepts *pre-encoded* batches
(`RawBSONDocument` lists, nothing left to build or encode) with `insert_many(ordered=False)`:
no client that has to read, build or transform documents can beat it on the same server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Self

import bson
import psutil
from bson.raw_bson import RawBSONDocument

from dataworks.core.clients import RAW_CODEC, fast_count
from dataworks.generators.source import resolve_source
from dataworks.generators.worker import BatchMaker, BatchPlan

ROOT = Path(__file__).resolve().parents[1]
VOLVO = str(ROOT / "user_defined/generators/volvo_generator.py")
TEMPLATE = str(ROOT / "user_defined/templates/service_order_template.json")
VOLVO_STRATEGY = str(ROOT / "user_defined/strategies/volvo_strategy.py")


# -- the data set ---------------------------------------------------------------------------

_maker: BatchMaker | None = None


def _init_maker(source: str, seed: int, total: int, batch_size: int) -> None:
    global _maker
    _maker = BatchMaker(BatchPlan(resolve_source(source), seed=seed, total=total,
                                  batch_size=batch_size))


def _make_blob(index: int) -> bytes:
    assert _maker is not None
    return _maker.make(index).blob


def encoded_batches(source: str, *, seed: int, total: int, batch_size: int,
                    processes: int = 1) -> list[bytes]:
    """The BSON of every batch that `dataworks generate --seed SEED --batch-size B` writes:
    the same documents, the same `_id`s, byte for byte."""
    count = -(-total // batch_size)
    if processes <= 1:
        _init_maker(source, seed, total, batch_size)
        return [_make_blob(i) for i in range(count)]
    with get_context("spawn").Pool(processes, _init_maker,
                                   (source, seed, total, batch_size)) as pool:
        return pool.map(_make_blob, range(count), chunksize=8)


def raw_documents(blob: bytes) -> list[RawBSONDocument]:
    return bson.decode_all(blob, RAW_CODEC)


async def insert_raw(uri: str, db: str, collection: str,
                     batches: Sequence[list[RawBSONDocument]], concurrency: int) -> float:
    """Seconds to insert every batch into a freshly dropped collection with `concurrency`
    concurrent `insert_many(ordered=False)` calls; checks the count afterwards."""
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[Any] = AsyncMongoClient(uri, maxPoolSize=max(10, concurrency * 2))
    coll = client[db][collection]
    try:
        await coll.drop()
        queue: asyncio.Queue[list[RawBSONDocument]] = asyncio.Queue()
        for batch in batches:
            queue.put_nowait(batch)

        async def writer() -> None:
            while not queue.empty():
                await coll.insert_many(queue.get_nowait(), ordered=False)

        started = time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        expected = sum(len(b) for b in batches)
        found = await fast_count(coll)
        if found != expected:
            raise RuntimeError(f"ceiling: {found} documents in {collection}, expected {expected}")
        await coll.drop()
        return seconds
    finally:
        await client.close()


async def scan_raw(uri: str, db: str, collection: str, *, sort: bool,
                   batch_size: int = 1000) -> tuple[float, int, int]:
    """Seconds, documents and bytes of one raw scan of a collection (`find_raw_batches`),
    sorted by `_id` (what `dataworks migrate` reads) or in natural order."""
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[Any] = AsyncMongoClient(uri)
    try:
        coll = client[db][collection]
        started = time.perf_counter()
        docs = nbytes = 0
        cursor = coll.find_raw_batches({}, sort=[("_id", 1)] if sort else None,
                                       batch_size=batch_size)
        async for data in cursor:
            nbytes += len(data)
            docs += len(bson.decode_all(data, RAW_CODEC))
        return time.perf_counter() - started, docs, nbytes
    finally:
        await client.close()


# -- measuring client processes -------------------------------------------------------------


class PeakMemory:
    """Samples RSS of this process and its worker processes (not servers) every 50 ms."""

    def __init__(self, exclude: str = "ferretdb") -> None:
        self.peak = 0
        self.exclude = exclude
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(0.05):
            try:
                workers = [c for c in me.children(True) if self.exclude not in c.name()]
                rss = me.memory_info().rss + sum(c.memory_info().rss for c in workers)
            except psutil.Error:
                continue
            self.peak = max(self.peak, rss)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Measured:
    """What a command (or a pipeline of commands) cost: wall time, the CPU of every process
    of its trees (from `wait4`, which includes reaped descendants such as worker processes),
    and the peak of the summed RSS of those trees (sampled every 100 ms)."""

    argv: list[list[str]]
    seconds: float
    cpu_seconds: float
    peak_rss_bytes: int
    returncodes: list[int]
    stderr_tail: list[str] = field(default_factory=list)
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def ok(self) -> bool:
        return all(code == 0 for code in self.returncodes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _tree_rss(pids: Sequence[int]) -> int:
    total = 0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            procs = [proc, *proc.children(recursive=True)]
        except psutil.Error:
            continue
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
    return total


def run_measured(argvs: Sequence[Sequence[str]], *, cwd: Path, log_dir: Path, name: str,
                 env: dict[str, str] | None = None, timeout: float = 3600.0) -> Measured:
    """Run one command, or several connected stdout -> stdin like a shell pipeline, and
    measure them together. stdout of the last and every stderr go to files in `log_dir`."""
    log_dir.mkdir(parents=True, exist_ok=True)
    load = psutil.getloadavg()
    procs: list[subprocess.Popen[bytes]] = []
    err_paths = []
    out = open(log_dir / f"{name}.out", "wb")  # noqa: SIM115 - closed below
    started = time.perf_counter()
    try:
        for i, argv in enumerate(argvs):
            last = i == len(argvs) - 1
            err_path = log_dir / f"{name}.{i}.err"
            err_paths.append(err_path)
            with open(err_path, "wb") as err:
                proc = subprocess.Popen(
                    list(argv), cwd=cwd, env=env, stderr=err,
                    stdin=procs[-1].stdout if procs else subprocess.DEVNULL,
                    stdout=out if last else subprocess.PIPE,
                    start_new_session=True,
                )
            if procs and procs[-1].stdout is not None:
                procs[-1].stdout.close()  # the pipe now belongs to the two children
            procs.append(proc)
        peak = 0
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            pids = [p.pid for p in procs]
            while not stop.wait(0.1):
                peak = max(peak, _tree_rss(pids))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        cpu = 0.0
        codes = []
        deadline = started + timeout
        for proc in procs:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.perf_counter() > deadline:
                    for p in procs:
                        with contextlib.suppress(OSError):
                            os.killpg(p.pid, 9)
                    pid, status, usage = os.wait4(proc.pid, 0)
                    break
                time.sleep(0.02)
            proc.returncode = os.waitstatus_to_exitcode(status)
            codes.append(proc.returncode)
            cpu += usage.ru_utime + usage.ru_stime
        seconds = time.perf_counter() - started
        stop.set()
        sampler.join()
    finally:
        out.close()
    tail: list[str] = []
    for path in err_paths:
        lines = path.read_text(errors="replace").splitlines()
        tail.extend(lines[-4:])
    return Measured([list(a) for a in argvs], seconds, cpu, peak, codes, tail, load)


# -- the machine ----------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                                  check=False).stdout.strip()
        except OSError:
            return ""

    import pymongo

    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "pymongo": pymongo.version,
        "pymongo_c_extensions": pymongo.has_c(),
        "platform": platform.platform(),
        "git_commit": git("rev-parse", "--short", "HEAD"),
        "git_dirty_files": len(git("status", "--porcelain", "--untracked-files=no").splitlines()),
    }
