"""`generate()`: the one function behind `dataworks generate`, usable from Python.

A run's identity is its target namespace (`generate:<hosts>/<db>.<collection>`). Its state
(source, seed, total, batch size, acknowledged batches) is saved before the first insert,
every FRAMEWORK_CHECKPOINT_INTERVAL documents, on Ctrl-C / SIGTERM and on failure, so the
same command run again regenerates exactly the batches that were not acknowledged; re-sent
documents have the same deterministic `_id`s and count as "already present", never twice.
`generators/resume.py` decides between resuming, starting and "nothing to do".
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import bson
from bson import json_util

from dataworks.checkpoints.store import (
    CHECKPOINT_FORMAT,
    CheckpointStore,
    check_store_spec,
    open_store,
)
from dataworks.config.settings import Settings
from dataworks.core.clients import RAW_CODEC, Endpoint, check_reachable, connect, fast_count
from dataworks.core.endpoints import GENERATION_SETTING, generation_endpoint
from dataworks.core.retry import RetryPolicy, with_retries
from dataworks.core.throttle import AdaptiveLimiter
from dataworks.errors import Interrupted, RunFailed, UserError
from dataworks.generators.engine import EngineOptions, make_executor, run_batches
from dataworks.generators.ids import batch_seed, id_prefix, with_ids
from dataworks.generators.insert import insert_batch
from dataworks.generators.ledger import BatchLedger
from dataworks.generators.probe import probe
from dataworks.generators.resume import Requested, decide
from dataworks.generators.source import GeneratorSource, build_generator, resolve_source
from dataworks.generators.worker import BatchPlan, BuiltBatch
from dataworks.monitoring.logs import event
from dataworks.monitoring.metrics import RunMetrics
from dataworks.monitoring.progress import show_progress
from dataworks.monitoring.ru import RequestUnitAccounting, detect_kind

log = logging.getLogger("dataworks.generate")


@dataclass(frozen=True)
class GenerationReport:
    run_id: str | None
    target: str  # masked URI and namespace, or "dry run"
    source: str
    seed: int
    total: int
    batch_size: int
    written: int  # inserted by this run (generated, in a dry run)
    already_present: int  # duplicate keys: written by an earlier, interrupted attempt
    resumed_from: int  # documents acknowledged by earlier runs before this one started
    bytes: int
    seconds: float
    peak_rss_bytes: int
    dry_run: bool
    resumed: bool
    target_count: int | None = None  # documents in the collection at the end, as counted
    status: str = "completed"  # or "nothing to do"

    @property
    def documents(self) -> int:
        return self.resumed_from + self.written + self.already_present

    @property
    def docs_per_second(self) -> float:
        return (self.written + self.already_present) / self.seconds if self.seconds else 0.0

    @property
    def mb_per_second(self) -> float:
        return self.bytes / self.seconds / 1e6 if self.seconds else 0.0

    def summary(self) -> str:
        if self.status == "nothing to do":
            return (f"nothing to do: the run into {self.target} already finished "
                    f"({self.documents:,} of {self.total:,} documents; the collection holds "
                    f"{self.target_count:,}). Use --drop-target to generate it again.")
        verb = "generated (dry run, nothing written)" if self.dry_run else "written"
        lines = [
            f"{self.written:,} documents {verb} in {self.seconds:,.1f}s "
            f"({self.docs_per_second:,.0f} docs/s, {self.mb_per_second:,.1f} MB/s)",
            f"target {self.target}; source {self.source}; seed {self.seed}; "
            f"batch size {self.batch_size}",
            f"total {self.documents:,} of {self.total:,}"
            + (f" (resumed: {self.resumed_from:,} done before, "
               f"{self.already_present:,} already present)" if self.resumed else "")
            + f"; peak memory {self.peak_rss_bytes / 1e6:,.0f} MB",
        ]
        if self.target_count is not None:
            lines.append(f"the collection holds {self.target_count:,} documents")
        return "\n".join(lines)


def run_id_for(endpoint: Endpoint) -> str:
    return f"generate:{endpoint.host_key()}/{endpoint.namespace}"


def preview(source: str | GeneratorSource, count: int, seed: int | None = None) -> list[str]:
    """The first `count` documents of a run with `seed`, as relaxed extended JSON lines."""
    src = source if isinstance(source, GeneratorSource) else resolve_source(source)
    seed = 0 if seed is None else seed
    generator = build_generator(src, seed)
    prefix = id_prefix(seed)
    generator.reseed(batch_seed(seed, 0))
    docs = with_ids(generator.encode_batch(0, count), 0, prefix)
    options = json_util.RELAXED_JSON_OPTIONS
    return [json_util.dumps(bson.decode(doc), json_options=options) for doc in docs]


async def generate(
    settings: Settings,
    source: str | GeneratorSource,
    *,
    total: int | None = None,
    seed: int | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
    write_workers: int | None = None,
    drop: bool = False,
    dry_run: bool = False,
    resume: bool = False,
    force_from_start: bool = False,
    checkpoint_store: str = "target",
    metrics: RunMetrics | None = None,
    progress: bool = False,
    target_kind: str = "auto",
) -> GenerationReport:
    """Generate `total` documents from `source` into the GEN_DB_* target (or nowhere).

    Resumes by default: an interrupted run into the same collection continues to exactly its
    total, a finished one is "nothing to do" (`resume` is accepted and changes nothing).
    `force_from_start` discards the saved run; `drop` empties the collection first. A
    collection holding documents that no saved run accounts for is refused (exit 2).

    `target_kind` ("cosmos", "mongodb", "auto"): on Cosmos DB each insert's request charge is
    added to `metrics.request_units`.
    """
    del resume  # the default now; kept so old scripts and calls still work
    src = source if isinstance(source, GeneratorSource) else resolve_source(source)
    options = EngineOptions(
        workers=settings.generation_workers if workers is None else workers,
        write_workers=write_workers or settings.write_workers,
        checkpoint_every=settings.checkpoint_interval,
    )
    # Workers start now and boot while this process probes, connects and plans;
    # run_batches shuts them down, or the `finally` below when no batch is generated.
    executor = make_executor(src, options.workers)
    try:
        return await _generate(settings, src, executor, options, total=total, seed=seed,
                               batch_size=batch_size, drop=drop, dry_run=dry_run,
                               force_from_start=force_from_start,
                               checkpoint_store=checkpoint_store, metrics=metrics,
                               progress=progress, target_kind=target_kind)
    finally:
        executor.shutdown(wait=False, cancel_futures=True)


async def _generate(settings: Settings, src: GeneratorSource, executor: Executor,
                    options: EngineOptions, *, total: int | None, seed: int | None,
                    batch_size: int | None, drop: bool, dry_run: bool,
                    force_from_start: bool, checkpoint_store: str,
                    metrics: RunMetrics | None, progress: bool,
                    target_kind: str) -> GenerationReport:
    probe(build_generator(src, 0))  # a generator that returns no documents: exit 2, now
    metrics = metrics or RunMetrics()
    endpoint = generation_endpoint(settings)
    asked = Requested(total=_total(total, settings), total_given=total is not None,
                      seed=seed, batch_size=batch_size)
    if dry_run:
        seed = _new_seed() if seed is None else seed
        plan = BatchPlan(src, seed, asked.total, batch_size or settings.gen_batch_size)
        ledger = BatchLedger(plan.total, plan.batch_size)
        return await _run(plan, ledger, None, None, None, options, metrics, progress,
                          run_id=None, target="dry run", resumed=False,
                          settings=settings, executor=executor)

    check_store_spec(checkpoint_store)  # an unwritable store fails before any connection
    client = connect(endpoint)
    ru = RequestUnitAccounting(metrics, target=endpoint, target_kind=target_kind)
    try:
        await check_reachable(client, endpoint, side="target")
        if await detect_kind(target_kind, endpoint, client, side="target") == "cosmos":
            ru.target = endpoint  # `auto` and the server answers as Cosmos DB
        store = open_store(checkpoint_store, client)
        run_id = run_id_for(endpoint)
        collection = client[endpoint.db].get_collection(endpoint.collection,
                                                        codec_options=RAW_CODEC)
        state = await store.load(run_id)
        if drop:
            await collection.drop()
        present = 0 if drop else await fast_count(collection)
        decision = decide(state, src, asked, namespace=endpoint.namespace, present=present,
                          new_seed=_new_seed(), default_batch=settings.gen_batch_size,
                          forced=force_from_start or drop)
        if decision.kind == "nothing to do":
            return _nothing_to_do(state or {}, run_id, endpoint.display(), present)
        assert decision.plan is not None and decision.ledger is not None
        return await _run(decision.plan, decision.ledger,
                          ru.writes(collection, options.write_workers), store, run_id,
                          options, metrics, progress, run_id=run_id,
                          target=endpoint.display(), resumed=decision.kind == "resume",
                          settings=settings, count=lambda: fast_count(collection),
                          executor=executor)
    finally:
        await ru.aclose()
        await client.close()


def _nothing_to_do(state: dict[str, Any], run_id: str, target: str,
                   present: int) -> GenerationReport:
    total = int(state.get("total", 0))
    return GenerationReport(
        run_id=run_id, target=target, source=str(state.get("source")),
        seed=int(state.get("seed", 0)), total=total,
        batch_size=int(state.get("batch_size", 0)), written=0, already_present=0,
        resumed_from=int(state.get("documents_done", total)), bytes=0, seconds=0.0,
        peak_rss_bytes=0, dry_run=False, resumed=False, target_count=present,
        status="nothing to do",
    )


def _total(total: int | None, settings: Settings) -> int:
    value = settings.gen_total_documents if total is None else total
    if value < 0:
        raise UserError(f"--total must be 0 or more, not {value}")
    return value


def _new_seed() -> int:
    return random.SystemRandom().randrange(1, 2**31)


def _state(plan: BatchPlan, ledger: BatchLedger, run_id: str) -> dict[str, Any]:
    return {
        "format": CHECKPOINT_FORMAT,
        "run_id": run_id,
        "kind": "generate",
        "source": plan.source.describe(),
        "seed": plan.seed,
        "total": plan.total,
        "batch_size": plan.batch_size,
        "complete": ledger.complete,
        "documents_done": ledger.documents_done(),
        **ledger.to_state(),
    }


async def _run(plan: BatchPlan, ledger: BatchLedger, collection: Any,
               store: CheckpointStore | None, run_key: str | None, options: EngineOptions,
               metrics: RunMetrics, progress: bool, *, run_id: str | None, target: str,
               resumed: bool, settings: Settings | None = None,
               count: Callable[[], Awaitable[int]] | None = None,
               executor: Executor | None = None) -> GenerationReport:
    metrics.total = plan.total
    metrics.resumed_from = ledger.documents_done()
    policy = RetryPolicy() if settings is None else RetryPolicy(
        max_attempts=settings.retry_max_attempts, max_seconds=settings.retry_max_seconds)
    limiter = AdaptiveLimiter(options.write_workers, metrics=metrics, recovery_s=(
        5.0 if settings is None else settings.throttle_recovery_seconds))
    setting = generation_endpoint(settings).names.uri if settings else GENERATION_SETTING

    async def save() -> None:
        if store is not None and run_key is not None:
            state = _state(plan, ledger, run_key)
            await with_retries(lambda: store.save(run_key, state), policy,
                               what="saving the checkpoint")

    async def sink(batch: BuiltBatch) -> None:
        if collection is None:
            metrics.written += batch.count
            return
        docs = bson.decode_all(batch.blob, RAW_CODEC)
        await insert_batch(collection, docs, metrics, policy, limiter, setting=setting)

    await save()  # before the first insert: a run killed at once can still be resumed
    label = f"generate {target.rsplit(' ', 1)[-1]}"  # the namespace; the URI is logged
    event(log, "run_started", f"generating {plan.total:,} documents into {target}",
          run_id=run_id, total=plan.total, seed=plan.seed, resumed_from=metrics.resumed_from)
    try:
        async with show_progress(metrics, label, enabled=progress):
            await run_batches(plan, ledger, sink, options, metrics, save, executor)
    except asyncio.CancelledError:
        await _save_quietly(save)
        raise Interrupted(
            f"interrupted after {metrics.done:,} of {plan.total:,} documents",
            hint="run the same command again to continue" if store else None,
        ) from None
    except RunFailed:
        await _save_quietly(save)
        raise
    finally:
        metrics.finish()
    await save()
    target_count = None if count is None else await count()
    event(log, "run_finished", f"{metrics.written:,} documents written, "
          f"{metrics.already_present:,} already present", run_id=run_id,
          written=metrics.written, already_present=metrics.already_present,
          resumed_from=metrics.resumed_from, bytes_written=metrics.bytes_written,
          duration_s=metrics.elapsed, request_units=metrics.request_units,
          target_count=target_count)
    report = GenerationReport(
        run_id=run_id, target=target, source=plan.source.describe(), seed=plan.seed,
        total=plan.total, batch_size=plan.batch_size, written=metrics.written,
        already_present=metrics.already_present, resumed_from=metrics.resumed_from,
        bytes=metrics.bytes_written, seconds=metrics.elapsed,
        peak_rss_bytes=metrics.peak_rss_bytes, dry_run=collection is None, resumed=resumed,
        target_count=target_count,
    )
    if target_count is not None and target_count != plan.total:
        # "done" must mean the collection is right; someone else wrote to it meanwhile.
        raise RunFailed(
            f"the collection holds {target_count:,} documents, not the {plan.total:,} this "
            f"run generated ({report.documents:,} acknowledged)",
            hint="another writer changed it during the run; start clean with --drop-target",
        )
    return report


async def _save_quietly(save: Any) -> None:
    """Save state on the way out; a failure here must not hide the reason we are leaving."""
    try:
        await asyncio.shield(save())
    except Exception as exc:  # noqa: BLE001 - logged; the original error is re-raised
        log.error("could not save the checkpoint: %s", exc)
