"""Cosmos DB detected by the server's own replies (COSMOS.md §2, §7), not only by host name:
the stand-in on 127.0.0.1 is metered without `--source-kind`; a plain server is not."""

from __future__ import annotations

import json
from pathlib import Path

from pymongo import AsyncMongoClient

from dataworks.core.clients import Endpoint
from dataworks.monitoring.ru import cosmos_marker, detect_kind, is_cosmos_uri
from tests.integration.test_metrics import cli, migrate_env
from tests.migration_helpers import load, mixed_documents, raw_by_id


async def kind_of(uri: str) -> tuple[str | None, str]:
    client: AsyncMongoClient = AsyncMongoClient(uri, serverSelectionTimeoutMS=10_000)
    try:
        marker = await cosmos_marker(client)
        kind = await detect_kind("auto", Endpoint(uri, "db", "coll"), client)
    finally:
        await client.close()
    return marker, kind


async def test_the_stand_in_answers_as_cosmos_and_a_plain_server_does_not(cosmos_source,
                                                                          source_uri):
    portal = cosmos_source.portal_uri("acct")
    assert not is_cosmos_uri(portal)  # 127.0.0.1: the host name says nothing
    marker, kind = await kind_of(portal)
    assert kind == "cosmos" and marker == 'hello answers _t: "IsMasterResponse"'
    marker, kind = await kind_of(source_uri)  # FerretDB / mongo-java-server, no stand-in
    assert (marker, kind) == (None, "mongodb")


def migrate(source: str, target_uri: str, src: str, dst: str, tmp_path: Path) -> tuple:
    metrics_file = tmp_path / "metrics.json"
    result = cli(["migrate", "--batch-size", "250", "--verify", "none",
                  "--checkpoint-store", f"file:{tmp_path / 'ckpt'}",
                  "--metrics-file", str(metrics_file)],
                 migrate_env(source, target_uri, src, dst), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return result, json.loads(metrics_file.read_text())["summary"]["report"]


def test_migrate_meters_a_portal_string_on_loopback_without_source_kind(
        cosmos_source, source_uri, target_uri, unique_db_name, tmp_path):
    src = unique_db_name + "_src"
    load(source_uri, src, "orders", mixed_documents(1000, seed=3))
    result, report = migrate(cosmos_source.portal_uri("acct"), target_uri, src,
                             unique_db_name, tmp_path)
    assert raw_by_id(target_uri, unique_db_name, "orders") == raw_by_id(source_uri, src,
                                                                        "orders")
    counters = cosmos_source.counters
    assert counters.statistics_answered >= 4  # a charge read back per 250-document batch
    assert report["request_units"] == counters.statistics_request_units > 0
    assert f"request units: {report['request_units']:,.1f} RU" in result.stdout
    assert "source is Cosmos DB" in result.stderr


def test_migrate_does_not_take_a_plain_server_for_cosmos(source_uri, target_uri,
                                                         unique_db_name, tmp_path):
    src = unique_db_name + "_src"
    load(source_uri, src, "orders", mixed_documents(500, seed=4))
    result, report = migrate(source_uri, target_uri, src, unique_db_name, tmp_path)
    assert not report.get("request_units")
    assert "request units" not in result.stdout
    assert "Cosmos DB" not in result.stderr
