"""Every cursor DataWorks opens asks for a batch size.

Without one, a `getMore` may answer with everything that is left: mongo-java-server does,
and with ~20 KB documents among 30,000 that reply was 69.5 MB, over the 48 MB maximum
message size, so PyMongo raised `ProtocolError`. The test watches the commands a migration
(planning, copy, hash and sample verification), a preview and a checkpoint listing send.
"""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient, monitoring

from dataworks import commands
from dataworks.checkpoints.store import TargetCheckpointStore
from dataworks.config import load_settings
from dataworks.migrations.preview import preview_migration
from tests.migration_helpers import load, mixed_documents


class CursorCommands(monitoring.CommandListener):
    """Records find / aggregate / getMore commands while `active`."""

    def __init__(self) -> None:
        self.active = False
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.active and event.command_name in ("find", "aggregate", "getMore"):
            self.seen.append((event.command_name, dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


LISTENER = CursorCommands()
monitoring.register(LISTENER)  # global: the clients DataWorks creates itself report too


def without_batch_size(seen: list[tuple[str, dict[str, Any]]]) -> list[str]:
    missing = []
    for name, command in seen:
        if name == "aggregate":
            has = "batchSize" in command.get("cursor", {})
        else:
            has = "batchSize" in command or command.get("limit") == 1 or command.get(
                "singleBatch") is True
        if not has:
            shown = {k: v for k, v in command.items() if k not in ("lsid", "$db", "$clusterTime")}
            missing.append(f"{name}: {shown}")
    return missing


async def test_migration_verification_preview_and_listing_cursors_have_batch_sizes(
        source_uri, target_uri, unique_db_name, tmp_path):
    load(source_uri, unique_db_name, "orders", mixed_documents(3_000, seed=3))
    settings = load_settings(profile="dev", overrides={
        "mig_source_db_connection_string": source_uri, "mig_source_db_name": unique_db_name,
        "mig_source_db_collection": "orders", "mig_target_db_connection_string": target_uri,
        "mig_target_db_name": unique_db_name + "_t"})
    LISTENER.seen.clear()
    LISTENER.active = True
    try:
        hashed = await commands.migrate(settings, run_dir=tmp_path, verify="hash")
        sampled = await commands.migrate(settings, run_dir=tmp_path, verify="sample",
                                         sample_size=500, drop_target=True,
                                         force_from_start=True)
        preview = await preview_migration(settings, 5)
        client: AsyncMongoClient[Any] = AsyncMongoClient(target_uri)
        try:
            runs = await TargetCheckpointStore(client).list_runs()
        finally:
            await client.close()
    finally:
        LISTENER.active = False
    assert hashed.status == sampled.status == "completed"
    assert len(preview.items) == 5 and runs
    names = {name for name, _ in LISTENER.seen}
    assert {"find", "aggregate", "getMore"} <= names, names  # the watch saw real cursors
    assert without_batch_size(LISTENER.seen) == []
