"""A source whose `explain` says an `_id` range is a collection scan is read once, not once
per range: migrate plans one natural-order partition and hash verification one partition.

mongo-java-server really runs every `_id` range as a full in-memory scan plus a sort; its
launcher says so with `--explain` (the benchmark's setting). Its range reads cost the source
2-4x the CPU of one scan (100,000 volvo documents, 4 ranges: 4-8 CPU-s against 1.7-2.5),
which is what made `dataworks migrate` a third of the bare copy on that pair. The plugin's
servers run without `--explain`, so that the other tests exercise the `_id` range reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring

from dataworks import commands
from dataworks.config import load_settings
from dataworks.core.clients import ReadOnlyCollection
from dataworks.migrations.partitioning import NATURAL, PartitionPlanner
from dataworks.testing.mongojava import MongoJavaServer
from dataworks.verify import verify
from tests.migration_helpers import load, mixed_documents, raw_by_id


class _Finds(monitoring.CommandListener):
    """The `find` commands a client sent, as (collection, sort)."""

    def __init__(self) -> None:
        self.finds: list[tuple[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find":
            self.finds.append((event.command["find"], event.command.get("sort")))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture(scope="module")
def explaining_source(tmp_path_factory: pytest.TempPathFactory):
    server = MongoJavaServer(Path(tmp_path_factory.mktemp("explaining")), explain=True,
                             heap="512m").start()
    try:
        yield server.uri
    finally:
        server.stop()


async def test_a_source_whose_ranges_scan_is_read_in_natural_order_and_verified_whole(
        explaining_source, target_uri, unique_db_name, tmp_path):
    docs = mixed_documents(2_500, seed=11)  # ObjectId, string and number `_id`s
    load(explaining_source, unique_db_name, "orders", docs)
    source_finds, target_finds = _Finds(), _Finds()
    client: AsyncMongoClient[Any] = AsyncMongoClient(explaining_source,
                                                     event_listeners=[source_finds])
    try:
        source = ReadOnlyCollection(client[unique_db_name]["orders"])
        planner = PartitionPlanner(source)
        assert not await planner.can_seek()
        assert [p.group for p in await planner.plan(4)] == [NATURAL]

        settings = load_settings(profile="data-migration", overrides={
            "mig_source_db_connection_string": explaining_source,
            "mig_source_db_name": unique_db_name, "mig_source_db_collection": "orders",
            "mig_target_db_connection_string": target_uri,
            "mig_target_db_name": unique_db_name + "_t"})
        report = await commands.migrate(settings, run_dir=tmp_path, verify="hash")
        assert report.status == "completed"
        assert report.partitions == 1
        assert report.target_count == len(docs)
        assert raw_by_id(target_uri, unique_db_name + "_t", "orders") == raw_by_id(
            explaining_source, unique_db_name, "orders")

        target_client: AsyncMongoClient[Any] = AsyncMongoClient(target_uri,
                                                                event_listeners=[target_finds])
        try:
            checked = await verify(source, target_client[unique_db_name + "_t"]["orders"],
                                   "hash", parallelism=4)
        finally:
            await target_client.drop_database(unique_db_name + "_t")
            await target_client.close()
        assert checked.equal and checked.matched == len(docs)
        assert checked.partitions == 1
        assert "cannot seek" in checked.method
        # read once per side, unsorted: a sort by `_id` would sort the whole collection in
        # the server's memory before the first batch
        assert source_finds.finds == [("orders", None)]
        assert target_finds.finds == [("orders", None)]
        assert not checked.notes
    finally:
        await client.drop_database(unique_db_name)
        await client.close()
