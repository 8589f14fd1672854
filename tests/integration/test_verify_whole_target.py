"""Hash verification reads the whole target, whatever the source's `_id` types, and its
verdict stays exact past the listing budget (issue 13, item 4)."""

from __future__ import annotations

from pathlib import Path

from bson import ObjectId
from pymongo import AsyncMongoClient

from dataworks import commands
from dataworks.core.clients import ReadOnlyCollection
from dataworks.migrations.partitioning import PartitionPlanner
from dataworks.verify import verify
from tests.integration.test_migrate import settings_for
from tests.migration_helpers import load

ORDER_LINES = Path(__file__).resolve().parents[2] / "user_defined/strategies/order_lines_strategy.py"
# The shipped strategy, read by `_id` ranges as on MongoDB and Cosmos DB (FerretDB's planner
# would pick natural order, where verification reads everything in one partition).
RANGES = """

class OrderLinesByRanges(OrderLinesStrategy):
    async def partitions(self, planner):
        return await planner.plan_ranges(3)
"""


def orders(count: int) -> list[dict]:
    return [{"_id": ObjectId(), "orderNumber": f"SO-{i}", "totalPrice": i,
             "jobs": [{"jobCode": f"J{j}", "labourHours": j} for j in range(i % 3 + 1)]}
            for i in range(count)]


async def test_extra_target_documents_of_any_id_type_are_found_on_id_range_reading(
        source_uri, target_uri, unique_db_name, target_db_name):
    """Source: 500 ObjectId `_id`s, so the plan holds ObjectId ranges only. The target gets
    the same 500 plus a string, a number and a sub-document `_id`: all three are extra."""
    docs = [{"_id": ObjectId(), "n": i} for i in range(500)]
    strays = [{"_id": "stray"}, {"_id": 7}, {"_id": {"a": 1}}]
    async with AsyncMongoClient(source_uri) as s, AsyncMongoClient(target_uri) as t:
        await s[unique_db_name].c.insert_many(docs)
        await t[target_db_name].c.insert_many([*docs, *strays])
        source = ReadOnlyCollection(s[unique_db_name].c)
        plan = await PartitionPlanner(source).plan_ranges(3)
        assert {p.group for p in plan} == {"objectId"}
        report = await verify(source, t[target_db_name].c, "hash", partitions=plan)
        assert not report.equal
        assert report.extra_ids == [7, "stray", {"a": 1}]  # in BSON order
        assert report.extra_count == 3 and report.missing_count == 0
        assert report.target_count == 503 and report.matched == 500


async def test_order_lines_split_verifies_equal_past_the_listing_budget(
        source_uri, target_uri, unique_db_name, tmp_path):
    """order_lines_strategy turns each ObjectId order into an ObjectId header and
    sub-document `_id` lines. The migration's own hash verification must find every line
    (it reported them all missing), and a budget of 10 listed `_id`s must not flip the
    verdict; a real difference still shows."""
    src = unique_db_name + "_src"
    load(source_uri, src, "orders", orders(200))
    strategy = tmp_path / "lines.py"
    strategy.write_text(ORDER_LINES.read_text() + RANGES)
    settings = settings_for(source_uri, target_uri, src, unique_db_name)
    report = await commands.migrate(settings, strategy=f"{strategy}:OrderLinesByRanges",
                                    run_dir=tmp_path, verify="hash")
    assert report.partitions >= 2
    lines = sum(i % 3 + 1 for i in range(200))
    assert report.target_count == 200 + lines
    assert report.verified_equal is True, report.verification
    assert report.verification["matched"] == 200 + lines

    from dataworks.migrations.loading import load_strategy
    from dataworks.migrations.strategy import StrategyContext

    async with AsyncMongoClient(source_uri) as s, AsyncMongoClient(target_uri) as t:
        source = ReadOnlyCollection(s[src].orders)
        target = t[unique_db_name].orders
        cls, _ = load_strategy(f"{strategy}:OrderLinesByRanges")
        transform = cls(StrategyContext(source, "", "", 100)).transform
        plan = await PartitionPlanner(source).plan_ranges(3)
        small = await verify(source, target, "hash", partitions=plan, transform=transform,
                             max_listed=10)
        assert small.equal, small.to_dict(limit=3)
        assert small.matched == 200 + lines and small.missing_count == 0

        await target.delete_one({"kind": "job_line"})
        gone = await verify(source, target, "hash", partitions=plan, transform=transform,
                            max_listed=10)
        assert not gone.equal
        assert gone.missing_count >= 1
