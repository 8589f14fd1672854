"""A source written to during the copy is named in the summary (issue 13, item 6): the copy
cannot be exact then, and the user must know."""

from __future__ import annotations

import asyncio

import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient

from dataworks import commands
from dataworks.monitoring.metrics import RunMetrics
from tests.integration.test_migrate import settings_for
from tests.migration_helpers import load, mixed_documents

RANGES_STRATEGY = """
from dataworks import BaseMigrationStrategy

class Ranges(BaseMigrationStrategy):
    async def partitions(self, planner):
        return await planner.plan_ranges(3)
"""
CHANGED = "the source changed during the copy"


@pytest.mark.parametrize("reading", ["natural", "id_ranges"])
async def test_a_source_written_during_the_copy_is_reported(reading, source_uri, target_uri,
                                                            unique_db_name, tmp_path):
    src = unique_db_name + "_src"
    load(source_uri, src, "orders", mixed_documents(6_000, seed=8))
    strategy = None
    if reading == "id_ranges":
        (tmp_path / "ranges.py").write_text(RANGES_STRATEGY)
        strategy = f"{tmp_path / 'ranges.py'}:Ranges"
    settings = settings_for(source_uri, target_uri, src, unique_db_name, mig_batch_size=250,
                            max_insert_workers=2)
    metrics = RunMetrics()
    written_when_changed: list[int] = []

    async def another_application_writes() -> None:
        while metrics.written < 500:
            await asyncio.sleep(0.01)
        async with AsyncMongoClient(source_uri) as client:
            orders = client[src]["orders"]
            if reading == "natural":  # the count moves
                await orders.insert_many([{"_id": ObjectId(), "late": i} for i in range(5)])
            else:  # one in, one out: same count, but a newer greatest _id
                await orders.insert_one({"_id": ObjectId(), "late": True})
                await orders.delete_one({"_id": {"$type": "string"}})
        written_when_changed.append(metrics.written)

    report, _ = await asyncio.gather(
        commands.migrate(settings, strategy=strategy, run_dir=tmp_path, metrics=metrics,
                         verify="none"),
        another_application_writes(),
    )
    assert written_when_changed[0] < 6_000  # the change landed during the copy
    warning = next((w for w in report.warnings if CHANGED in w), None)
    assert warning is not None, report.warnings
    assert "frozen source" in warning
    if reading == "natural":
        assert "6,000 documents when the copy started, 6,005 when it ended" in warning
    else:
        assert "newest _id" in warning

    # The same source, now left alone: no warning.
    calm = settings_for(source_uri, target_uri, src, unique_db_name + "_b",
                        mig_batch_size=1000)
    quiet = await commands.migrate(calm, strategy=strategy, run_dir=tmp_path, verify="none")
    assert not [w for w in quiet.warnings if CHANGED in w]
