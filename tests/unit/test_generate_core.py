"""Pure logic of the generation engine: ids, batch ledger, seeds, the volvo generator."""

from __future__ import annotations

import asyncio
from pathlib import Path

import bson
from bson import ObjectId

from dataworks.generators.engine import EngineOptions, run_batches
from dataworks.generators.ids import batch_seed, has_leading_id, id_prefix, object_id, with_ids
from dataworks.generators.ledger import BatchLedger
from dataworks.generators.run import preview
from dataworks.generators.source import build_generator, resolve_source
from dataworks.generators.worker import BatchMaker, BatchPlan
from dataworks.monitoring.metrics import RunMetrics

ROOT = Path(__file__).resolve().parents[2]
VOLVO = str(ROOT / "user_defined/generators/volvo_generator.py")
TEMPLATE = str(ROOT / "user_defined/templates/service_order_template.json")


def test_ids_are_deterministic_unique_and_leading() -> None:
    prefix = id_prefix(42)
    docs = with_ids([bson.encode({"a": 1}), bson.encode({"_id": 5, "a": 2})], 10, prefix)
    first, second = bson.decode(docs[0]), bson.decode(docs[1])
    assert list(first) == ["_id", "a"] and first["_id"] == object_id(42, 10)
    assert second["_id"] == 5  # a generator's own _id is kept
    assert all(has_leading_id(d) for d in docs)
    assert object_id(42, 10) != object_id(42, 11) != object_id(43, 11)
    assert object_id(42, 10) < object_id(42, 11)  # ascending within a run
    assert isinstance(object_id(1, 0), ObjectId)
    assert batch_seed(1, 0) != batch_seed(1, 1) != batch_seed(2, 0)


def test_ledger_tracks_out_of_order_batches() -> None:
    ledger = BatchLedger(total=2_500, batch_size=1_000)
    assert ledger.batches == 3 and ledger.size_of(2) == 500
    ledger.mark_done(1)
    assert ledger.to_state() == {"watermark": 0, "done_above": [1]}
    assert list(ledger.pending()) == [0, 2] and ledger.documents_done() == 1_000
    ledger.mark_done(0)
    assert ledger.to_state() == {"watermark": 2, "done_above": []}
    restored = BatchLedger(2_500, 1_000, **ledger.to_state())
    assert list(restored.pending()) == [2] and not restored.complete
    restored.mark_done(2)
    assert restored.complete and restored.documents_done() == 2_500


def test_volvo_orders_are_realistic_and_reproducible() -> None:
    source = resolve_source(VOLVO)
    gen = build_generator(source, seed=9)
    gen.reseed(1)
    docs = gen.encode_batch(0, 200)
    gen2 = build_generator(source, seed=9)
    gen2.reseed(1)
    assert gen2.encode_batch(0, 200) == docs
    sizes = [len(d) for d in docs]
    assert 1_300 < sum(sizes) / len(sizes) < 2_000
    order = bson.decode(docs[0])
    assert order["orderNumber"] == "SO-0000000000"
    assert len(order["vehicle"]["vin"]) == 17 and order["vehicle"]["vin"].startswith("YV1")
    assert isinstance(order["vehicle"]["modelYear"], int)
    assert order["jobs"] and order["jobs"][0]["operationCode"]
    parts = [p for d in map(bson.decode, docs) for job in d["jobs"] for p in job["parts"]]
    assert parts and all(p["quantity"] >= 1 and p["unitPrice"] >= 0 for p in parts)
    assert order["totals"]["total"] > 0 and order["createdAt"] < order["scheduledAt"]
    assert {"dealerId", "workshop"} <= set(order["dealer"])
    # The original framework's per-document API still works.
    assert gen.generate_document(3)["orderNumber"] == "SO-0000000003"


def test_same_seed_same_batches_whatever_the_order() -> None:
    plan = BatchPlan(resolve_source(VOLVO), seed=5, total=250, batch_size=100)
    forward = [BatchMaker(plan).make(i).blob for i in range(3)]
    maker = BatchMaker(plan)
    backward = [maker.make(i).blob for i in (2, 1, 0)][::-1]
    assert forward == backward
    assert len(bson.decode_all(forward[2])) == 50


def test_dry_run_engine_in_process_counts_every_document() -> None:
    plan = BatchPlan(resolve_source(TEMPLATE), seed=3, total=1_050, batch_size=100)
    ledger = BatchLedger(plan.total, plan.batch_size)
    metrics = RunMetrics()
    seen: list[int] = []

    async def sink(batch):  # type: ignore[no-untyped-def]
        seen.append(batch.index)
        metrics.written += batch.count

    saves: list[int] = []

    async def checkpoint() -> None:
        saves.append(ledger.documents_done())

    asyncio.run(run_batches(plan, ledger, sink, EngineOptions(workers=0, write_workers=2,
                                                              checkpoint_every=300),
                            metrics, checkpoint))
    assert sorted(seen) == list(range(11)) and metrics.written == 1_050
    assert ledger.complete and saves and saves == sorted(saves)


def test_preview_shows_the_first_documents_of_the_seeded_run() -> None:
    lines = preview(VOLVO, 2, seed=4)
    plan = BatchPlan(resolve_source(VOLVO), seed=4, total=2, batch_size=1000)
    blob = BatchMaker(plan).make(0).blob
    docs = bson.decode_all(blob)
    assert len(lines) == 2
    assert str(docs[1]["_id"]) in lines[1] and docs[1]["orderNumber"] in lines[1]
