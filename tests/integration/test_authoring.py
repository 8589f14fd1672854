"""Writing a strategy as a new user would, against real servers: `new` -> `check` ->
`migrate --preview` -> `migrate`; previews write nothing; the example strategies work."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from bson import json_util
from pymongo import MongoClient
from typer.testing import CliRunner

import dataworks
from dataworks.cli import app
from dataworks.config import load_settings
from dataworks.testing import sample_from_generator
from tests.migration_helpers import load

ROOT = Path(__file__).resolve().parents[2]
STRATEGIES = ROOT / "user_defined" / "strategies"
VOLVO = str(ROOT / "user_defined" / "generators" / "volvo_generator.py")


@pytest.fixture(scope="module")
def volvo_source(source_uri: str) -> tuple[str, list[dict[str, Any]]]:
    db = "dw_authoring_src"
    docs = sample_from_generator(VOLVO, count=400, seed=11)
    load(source_uri, db, "orders", docs)
    return db, docs


def endpoint_args(source_uri: str, src_db: str, target_uri: str, dst_db: str) -> list[str]:
    return ["--profile", "dev", "--source-uri", source_uri, "--source-db", src_db,
            "--source-collection", "orders", "--target-uri", target_uri, "--target-db", dst_db,
            "--target-collection", "orders"]


def settings_for(source_uri: str, target_uri: str, src_db: str, dst_db: str) -> Any:
    return load_settings(profile="dev", overrides={
        "mig_source_db_connection_string": source_uri, "mig_source_db_name": src_db,
        "mig_source_db_collection": "orders", "mig_target_db_connection_string": target_uri,
        "mig_target_db_name": dst_db, "mig_target_db_collection": "orders"})


def target_databases(uri: str) -> list[str]:
    with MongoClient(uri) as client:
        return client.list_database_names()


def test_new_check_preview_migrate_on_a_fresh_strategy_file(
        volvo_source, source_uri, target_uri, unique_db_name, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    src_db, docs = volvo_source
    runner = CliRunner()
    args = endpoint_args(source_uri, src_db, target_uri, unique_db_name)
    path = "strategies/my_first_strategy.py"

    made = runner.invoke(app, ["new", "strategy", path])
    assert made.exit_code == 0, made.output
    checked = runner.invoke(app, ["check", path])
    assert checked.exit_code == 0, checked.output

    shown = runner.invoke(app, ["migrate", "--strategy", path, "--preview", "3", *args])
    assert shown.exit_code == 0, shown.output
    assert "document 3: unchanged" in shown.stdout and "nothing written" in shown.stdout
    assert "the strategy left it as it was" in shown.stdout  # no field-by-field copy
    assert unique_db_name not in target_databases(target_uri)  # the preview wrote nothing

    moved = runner.invoke(app, ["migrate", "--strategy", path, "--quiet", *args])
    assert moved.exit_code == 0, moved.output
    with MongoClient(target_uri) as client:
        target = client[unique_db_name]["orders"]
        assert target.count_documents({}) == len(docs)
        assert target.find_one({"_id": docs[7]["_id"]}) == docs[7]


def test_edited_strategy_preview_shows_changes_then_migrates(
        volvo_source, source_uri, target_uri, unique_db_name, tmp_path, monkeypatch) -> None:
    """The guide's first exercise: drop some documents, rename a field, add one."""
    monkeypatch.chdir(tmp_path)
    src_db, docs = volvo_source
    runner = CliRunner()
    args = endpoint_args(source_uri, src_db, target_uri, unique_db_name)
    path = Path("reshape.py")
    assert runner.invoke(app, ["new", "strategy", str(path)]).exit_code == 0
    text = path.read_text()
    text = text.replace("        return doc\n", (
        "        if doc[\"status\"] == \"CLOSED\":\n"
        "            return None\n"
        "        doc[\"order_no\"] = doc.pop(\"orderNumber\")\n"
        "        doc[\"schemaVersion\"] = 2\n"
        "        return doc\n"), 1)
    path.write_text(text)
    assert runner.invoke(app, ["check", str(path)]).exit_code == 0

    shown = runner.invoke(app, ["migrate", "--strategy", str(path), "--preview", "20", "--json",
                                *args])
    assert shown.exit_code == 0, shown.output
    preview = json_util.loads(shown.stdout)
    first20 = sorted(docs, key=lambda d: d["_id"])[:20]
    assert [d["before"]["_id"] for d in preview["documents"]] == [d["_id"] for d in first20]
    closed = sum(d["status"] == "CLOSED" for d in first20)
    assert 0 < closed < 20
    assert preview["counts"] == {"unchanged": 0, "changed": 20 - closed, "dropped": closed,
                                 "split": 0}
    changed = next(d for d in preview["documents"] if d["outcome"] == "changed")
    assert changed["changes"] == [[
        {"path": "orderNumber", "change": "removed", "before": changed["before"]["orderNumber"]},
        {"path": "order_no", "change": "added", "after": changed["before"]["orderNumber"]},
        {"path": "schemaVersion", "change": "added", "after": 2},
    ]]
    assert unique_db_name not in target_databases(target_uri)

    rich = runner.invoke(app, ["migrate", "--strategy", str(path), "--preview", "5", *args])
    assert rich.exit_code == 0 and "dropped" in rich.stdout and "order_no" in rich.stdout
    # Only what the strategy changed: the unchanged fields are counted, not listed...
    changed_only = [line for line in rich.stdout.splitlines() if "totals.total" in line]
    assert "unchanged fields (--full shows them)" in rich.stdout
    full = runner.invoke(app, ["migrate", "--strategy", str(path), "--preview", "5", "--full",
                               *args])
    # ... and --full lists every field of every document.
    assert full.exit_code == 0 and "(--full shows them)" not in full.stdout
    assert len([ln for ln in full.stdout.splitlines() if "totals.total" in ln]) == 5
    assert len(changed_only) == sum(d["status"] == "CLOSED"
                                    for d in sorted(docs, key=lambda d: d["_id"])[:5])

    moved = runner.invoke(app, ["migrate", "--strategy", str(path), "--quiet", *args])
    assert moved.exit_code == 0, moved.output
    with MongoClient(target_uri) as client:
        target = client[unique_db_name]["orders"]
        kept = [d for d in docs if d["status"] != "CLOSED"]
        assert target.count_documents({}) == len(kept)
        assert target.count_documents({"order_no": {"$exists": True}, "schemaVersion": 2}) == \
            len(kept)


def test_preview_json_without_preview_and_bad_counts_are_usage_errors(
        volvo_source, source_uri, target_uri, unique_db_name) -> None:
    args = endpoint_args(source_uri, volvo_source[0], target_uri, unique_db_name)
    assert CliRunner().invoke(app, ["migrate", "--json", *args]).exit_code == 2
    assert CliRunner().invoke(app, ["migrate", "--preview", "0", *args]).exit_code == 2


async def test_python_api_previews_and_migrates_the_example_strategies(
        volvo_source, source_uri, target_uri, unique_db_name, tmp_path) -> None:
    src_db, docs = volvo_source
    settings = settings_for(source_uri, target_uri, src_db, unique_db_name)

    lines = await dataworks.preview_migration(settings, 4,
                                              strategy=str(STRATEGIES / "order_lines_strategy.py"))
    assert [item.outcome for item in lines.items] == ["split"] * 4
    assert json.loads(lines.to_json())["counts"]["split"] == 4

    report = await dataworks.migrate(settings, strategy=str(STRATEGIES / "order_lines_strategy.py"),
                                     run_dir=tmp_path)
    assert isinstance(report, dataworks.MigrationReport)
    jobs = sum(len(d["jobs"]) for d in docs)
    assert report.written == len(docs) + jobs and report.read == len(docs)
    again = await dataworks.migrate(settings, strategy=str(STRATEGIES / "order_lines_strategy.py"),
                                    run_dir=tmp_path)
    assert again.status == "nothing to do"

    open_settings = settings_for(source_uri, target_uri, src_db, unique_db_name + "_open")
    opened = await dataworks.migrate(open_settings,
                                     strategy=str(STRATEGIES / "open_orders_strategy.py"),
                                     run_dir=tmp_path)
    open_statuses = {"OPEN", "SCHEDULED", "IN_PROGRESS", "WAITING_PARTS"}
    expected = [d for d in docs if d["status"] in open_statuses]
    assert opened.read == len(expected) and opened.written + opened.dropped == len(expected)
    with MongoClient(target_uri) as client:
        sample = client[unique_db_name + "_open"]["orders"].find_one()
        assert sample is not None and "notes" not in sample
        assert sample["status"] in open_statuses


TYPO = ("from dataworks import BaseMigrationStrategy\n\n\n"
        "class Typo(BaseMigrationStrategy):\n"
        "    def transform(self, doc):\n"
        "        doc['n'] = doc['orderNumbr']\n"
        "        return doc\n")


async def test_preview_names_the_line_where_transform_failed(
        volvo_source, source_uri, target_uri, unique_db_name, tmp_path) -> None:
    path = tmp_path / "typo.py"
    path.write_text(TYPO)
    settings = settings_for(source_uri, target_uri, volvo_source[0], unique_db_name)
    with pytest.raises(dataworks.PluginError, match=r"typo\.py:6: .*transform raised KeyError"):
        await dataworks.preview_migration(settings, 2, strategy=str(path))


def test_cli_preview_of_a_failing_transform_exits_2_with_the_line(
        volvo_source, source_uri, target_uri, unique_db_name, tmp_path) -> None:
    path = tmp_path / "typo.py"
    path.write_text(TYPO)
    result = CliRunner().invoke(app, ["migrate", "--strategy", str(path), "--preview", "2",
                                      *endpoint_args(source_uri, volvo_source[0], target_uri,
                                                     unique_db_name)])
    assert result.exit_code == 2
    assert re.search(r"typo\.py:6: .*transform raised KeyError", result.output), result.output
    assert unique_db_name not in target_databases(target_uri)


def test_preview_reads_the_first_documents_as_stored_where_the_server_cannot_seek(
        source_uri, unique_db_name, tmp_path, monkeypatch) -> None:
    """An `_id` sort on a server that cannot seek reads and sorts the whole collection before
    the first document: the preview takes the first N in natural order there."""
    import asyncio

    from dataworks.core.clients import ReadOnlyCollection, connect
    from dataworks.migrations.partitioning import PartitionPlanner

    monkeypatch.chdir(tmp_path)
    with MongoClient(source_uri) as client:
        client[unique_db_name]["c"].insert_many([{"_id": i, "v": i} for i in (5, 4, 3, 2, 1)])

    async def seeks() -> bool:
        settings = settings_for(source_uri, source_uri, unique_db_name, unique_db_name)
        from dataworks.core.endpoints import source_endpoint

        endpoint = source_endpoint(settings)
        client = connect(endpoint)
        try:
            source = ReadOnlyCollection(client[unique_db_name]["c"])
            return await PartitionPlanner(source).can_seek()
        finally:
            await client.close()

    expected = [1, 2] if asyncio.run(seeks()) else [5, 4]
    shown = CliRunner().invoke(app, ["migrate", "--source-uri", source_uri, "--source-db",
                                     unique_db_name, "--source-collection", "c", "--preview",
                                     "2", "--json"])
    assert shown.exit_code == 0, shown.output
    assert [d["before"]["_id"] for d in json_util.loads(shown.stdout)["documents"]] == expected
    with MongoClient(source_uri) as client:
        client.drop_database(unique_db_name)
