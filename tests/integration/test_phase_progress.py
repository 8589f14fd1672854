"""The phases after the copy report their own progress against a real server: sample
verification counts the documents it compared, count verification its partitions, an index
build names the index and, where the server does not report the build's progress, says so
instead of showing a rate or an ETA. Checked on the rendered progress display."""

from __future__ import annotations

import io

import pytest
from pymongo import AsyncMongoClient
from rich.console import Console

from dataworks.core.clients import ReadOnlyCollection
from dataworks.core.retry import RetryPolicy
from dataworks.indexes.build_progress import NO_PROGRESS, report_build_progress
from dataworks.indexes.operations import IndexCopyReport, create_specs
from dataworks.indexes.spec import IndexSpec
from dataworks.monitoring.display import ProgressView
from dataworks.monitoring.metrics import RunMetrics, current_run
from dataworks.verify import verify
from dataworks.verify.counting import count_by_partition

DOCS = 1_200


def phase_line(metrics: RunMetrics) -> str:
    console = Console(file=io.StringIO(), width=160, record=True, color_system=None)
    console.print(ProgressView(metrics, "migrate"))
    return next(line for line in console.export_text().splitlines() if "▸" in line)


@pytest.fixture
async def sides(source_uri, target_uri, unique_db_name, target_db_name):
    source_client: AsyncMongoClient = AsyncMongoClient(source_uri)
    target_client: AsyncMongoClient = AsyncMongoClient(target_uri)
    docs = [{"_id": i, "n": i} for i in range(DOCS)]
    await source_client[unique_db_name].orders.insert_many(docs)
    await target_client[target_db_name].orders.insert_many(docs)
    yield (ReadOnlyCollection(source_client[unique_db_name].orders),
           target_client[target_db_name].orders)
    await source_client.drop_database(unique_db_name)
    await target_client.drop_database(target_db_name)
    await source_client.close()
    await target_client.close()


async def test_sample_verification_counts_documents_compared(sides):
    source, target = sides
    metrics = RunMetrics(total=DOCS)
    with current_run(metrics), metrics.in_phase("verifying (sample)", total=1_000):
        report = await verify(source, target, "sample", sample_size=1_000, seed=7)
        line = phase_line(metrics)  # the last step, as the display last showed it
    assert report.equal and report.compared == 1_000
    assert line.startswith("▸ verifying (sample): comparing with the target · "
                           "1,000/1,000 documents · "), line
    assert "documents/s · ETA 0:00:00" in line, line


async def test_count_verification_counts_partitions(sides):
    source, _ = sides
    metrics = RunMetrics(total=DOCS)
    filters = [{"n": {"$lt": 400}}, {"n": {"$gte": 400, "$lt": 800}}, {"n": {"$gte": 800}}]
    with current_run(metrics), metrics.in_phase("verifying (count)"):
        counted = await count_by_partition(source, filters, RetryPolicy())
        line = phase_line(metrics)
    assert counted.total == DOCS
    assert "counting the source, partition by partition · 3/3 partitions · " in line, line
    assert "partitions/s · ETA 0:00:00" in line, line


async def test_index_build_names_the_index_and_says_when_progress_is_unknown(sides):
    _, target = sides
    metrics = RunMetrics(total=DOCS)
    report = IndexCopyReport()
    with current_run(metrics), metrics.in_phase("building indexes", unit="indexes"):
        await create_specs(target, [IndexSpec("by_n", (("n", 1),))], report)
        # These test servers report no build progress in currentOp (MongoDB does).
        assert await report_build_progress(target, "by_n") is None
        line = phase_line(metrics)
    assert report.created == ["by_n"]
    assert line.startswith(f"▸ building indexes: by_n (1/1) · {NO_PROGRESS} · 0:00:"), line
    assert "ETA" not in line and "documents/s ·" not in line, line


def test_database_run_phases_report_to_each_collections_line(source_uri, target_uri,
                                                             unique_db_name):
    """Each collection's verification reports to that collection's metrics, which its line
    of the database display renders (without, the phase went nowhere)."""
    import asyncio

    from pymongo import MongoClient

    from dataworks import commands
    from dataworks.config.settings import load_settings
    from dataworks.migrations.namespaces import Selection

    src, dst = f"{unique_db_name}_src", f"{unique_db_name}_dst"
    with MongoClient(source_uri) as client:
        for name in ("a", "b"):
            client[src][name].insert_many([{"_id": i, "n": i} for i in range(300)])
    settings = load_settings(profile="dev", overrides={
        "mig_source_db_connection_string": source_uri,
        "mig_target_db_connection_string": target_uri})
    holder: list = []
    try:
        report = asyncio.run(commands.migrate_database(
            settings, Selection(source_dbs=(src,), target_db=dst), run=holder,
            verify="hash"))
        assert report.ok, report
        for job in holder[0].jobs:
            assert "verifying (hash)" in job.metrics.phase_seconds, job.pair.source
    finally:
        with MongoClient(source_uri) as client:
            client.drop_database(src)
        with MongoClient(target_uri) as client:
            client.drop_database(dst)
