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


def _in_a_terminal(args: list[str], columns: int = 120) -> tuple[int, str]:
    """Run `python -m dataworks ARGS` with a pseudo-terminal as stdin/stdout/stderr; the
    screen's text (colours and cursor moves taken out) and the exit code."""
    import os
    import pty
    import re
    import subprocess
    import sys
    from pathlib import Path

    main_fd, child_fd = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MIG_", "GEN_"))}
    env.update(COLUMNS=str(columns), LINES="40", TERM="xterm-256color",
               PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    process = subprocess.Popen([sys.executable, "-m", "dataworks", *args], stdin=child_fd,
                               stdout=child_fd, stderr=child_fd, env=env, close_fds=True)
    os.close(child_fd)
    chunks = []
    while True:
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main_fd)
    code = process.wait(timeout=120)
    text = b"".join(chunks).decode("utf-8", "replace")
    return code, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "", text)


def renders(screen: str) -> list[str]:
    """Each rendering of the phase line (redraws overwrite it in place: one screen line)."""
    import re

    return [match.strip() for match in re.findall(r"▸ [^▸\n]*", screen)]


@pytest.mark.parametrize("mode", ["hash", "sample"])
async def test_verify_command_shows_its_phase_in_a_terminal(sides, mode, source_uri,
                                                            target_uri):
    """`dataworks verify` on a terminal: its phase line, with documents compared, their rate
    and an ETA, stays on the screen when it ends."""
    import asyncio

    source, target = sides
    args = ["verify", "--mode", mode, "--source-uri", source_uri, "--source-db",
            source.database_name, "--source-collection", "orders", "--target-uri", target_uri,
            "--target-db", target.database.name, "--target-collection", "orders"]
    code, screen = await asyncio.to_thread(_in_a_terminal, args)
    assert code == 0, screen
    phase = [line for line in renders(screen) if line.startswith(f"▸ verifying ({mode})")]
    assert phase, screen
    compared = "1,200/1,200 documents" if mode == "hash" else "1,000/1,000 documents"
    assert compared in phase[-1] and "documents/s · ETA 0:00:00" in phase[-1], phase[-1]


async def test_indexes_copy_shows_the_index_being_built_in_a_terminal(sides, source_uri,
                                                                     target_uri):
    import asyncio

    source, target = sides
    async with AsyncMongoClient(source_uri) as client:  # test set-up, not DataWorks
        await client[source.database_name].orders.create_index("n", name="by_n")
    args = ["indexes", "copy", "--source-uri", source_uri, "--source-db", source.database_name,
            "--source-collection", "orders", "--target-uri", target_uri, "--target-db",
            target.database.name, "--target-collection", "orders"]
    code, screen = await asyncio.to_thread(_in_a_terminal, args)
    assert code == 0, screen
    phase = [line for line in renders(screen) if line.startswith("▸ copying indexes")]
    assert phase and phase[-1].startswith("▸ copying indexes: by_n (1/1) · "), screen
    assert "ETA" not in phase[-1], phase[-1]  # the test servers report no build progress
