"""Passwords in connection strings never leak, and the source is only ever read.

FerretDB accepts any user and password with `authMechanism=PLAIN` (and rejects SCRAM), so
every command really runs with a password in its URIs; the test then searches everything the
runs printed or wrote (stdout, stderr, JSON logs, checkpoints in files and on the target,
dead letters, metrics files, reports) for it.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from bson import json_util
from pymongo import MongoClient

from dataworks import commands
from dataworks.config import load_settings
from dataworks.core.clients import ReadOnlyCollection, connect
from dataworks.core.endpoints import source_endpoint
from dataworks.monitoring.metrics import RunMetrics
from tests.integration.test_faults import InjectedServer
from tests.migration_helpers import load, mixed_documents, raw_by_id

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = str(ROOT / "user_defined/templates/service_order_template.json")
PASSWORD = "S3cretPw-d41f9"
SRC_DB = "dw_secret_src"


def with_password(uri: str) -> str:
    return uri.replace("mongodb://", f"mongodb://dwuser:{PASSWORD}@") + "?authMechanism=PLAIN"


def supports(command: str, option: str) -> bool:
    result = subprocess.run([sys.executable, "-m", "dataworks", *command.split(), "--help"],
                            capture_output=True, text=True, check=False,
                            env={**os.environ, "COLUMNS": "300"})
    return option in result.stdout


def scan_files(root: Path) -> list[str]:
    leaks = []
    for path in root.rglob("*"):
        if path.is_file() and PASSWORD.encode() in path.read_bytes():
            leaks.append(str(path))
    return leaks


def test_every_command_keeps_the_password_out_of_output_and_files(source_uri, target_uri,
                                                                  tmp_path):
    load(source_uri, SRC_DB, "orders", mixed_documents(2_000, seed=1))
    src, dst = with_password(source_uri), with_password(target_uri)
    dst_db = "dw_secret_dst"
    with MongoClient(target_uri) as client:
        client.drop_database(dst_db)
        client.drop_database("dw_secret_gen")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MIG_", "GEN_"))}
    env.update({"MIG_SOURCE_DB_CONNECTION_STRING": src, "MIG_SOURCE_DB_NAME": SRC_DB,
                "MIG_SOURCE_DB_COLLECTION": "orders", "MIG_TARGET_DB_CONNECTION_STRING": dst,
                "MIG_TARGET_DB_NAME": dst_db, "GEN_DB_CONNECTION_STRING": dst,
                "GEN_DB_NAME": "dw_secret_gen", "GEN_DB_COLLECTION": "gen", "COLUMNS": "200",
                "FRAMEWORK_SERVER_SELECTION_TIMEOUT_MS": "1500"})
    metrics = ["--metrics-file", "metrics.json"] if supports("migrate", "--metrics-file") else []
    gen_metrics = (["--metrics-file", "gen_metrics.csv"]
                   if supports("generate", "--metrics-file") else [])
    flags = ["--source-uri", src, "--target-uri", dst]
    runs = [
        (["config", "show"], 0),
        (["config", "show", "--json"], 0),
        (["generate", "--source", TEMPLATE, "--total", "300", "--seed", "1",
          "--log-format", "json", *gen_metrics], 0),
        (["generate", "--source", TEMPLATE, "--total", "300", "--seed", "1", "--collection",
          "gen2", "--checkpoint-store", "file:gen_state", "--uri", dst], 0),
        (["migrate", "--log-format", "json", *metrics], 0),
        (["migrate", *flags, "--target-collection", "orders2", "--checkpoint-store",
          "file:state", "--debug"], 0),
        (["migrate"], 0),  # nothing to do: finished checkpoint read back
        (["verify", "--mode", "hash", "--report", "verify.json"], 0),
        (["verify", *flags, "--mode", "sample", "--sample-size", "50"], 0),
        (["indexes", "copy"], 0),
        (["indexes", "compare", "--json"], 0),
        # failures that print URIs or server messages
        (["migrate", "--target-uri", src, "--target-db", SRC_DB], 2),  # same namespace
        (["migrate", "--target-uri", dst.replace("PLAIN", "SCRAM-SHA-256")], 2),
        (["migrate", "--target-uri", with_password("mongodb://127.0.0.1:1/"), "--debug"], 2),
        (["generate", "--source", TEMPLATE, "--uri", with_password("mongodb://127.0.0.1:1/"),
          "--debug"], 2),
        (["migrate", "--source-uri", "http://dwuser:" + PASSWORD + "@host/"], 2),
    ]
    if supports("checkpoints", "list"):
        runs += [(["checkpoints", "list"], 0), (["checkpoints", "list", "--json"], None),
                 (["checkpoints", "list", "--checkpoint-store", "file:state"], 0)]
    if supports("check", "--help"):
        runs.append((["check", TEMPLATE], None))
    for args, expected in runs:
        result = subprocess.run([sys.executable, "-m", "dataworks", *args], cwd=tmp_path,
                                env=env, capture_output=True, text=True, timeout=180,
                                check=False)
        shown = " ".join(a if PASSWORD not in a else "<uri>" for a in args)
        if expected is not None:
            assert result.returncode == expected, f"{shown}: {result.stderr[-2000:]}"
        assert PASSWORD not in result.stdout, f"password on stdout of: {shown}"
        assert PASSWORD not in result.stderr, f"password on stderr of: {shown}"
    assert (tmp_path / "state").exists() and (tmp_path / "gen_state").exists()
    assert not scan_files(tmp_path), f"password in files: {scan_files(tmp_path)}"
    assert not scan_files(ROOT / ".dataworks") if (ROOT / ".dataworks").exists() else True
    with MongoClient(target_uri) as client:
        saved = list(client["dataworks_meta"]["checkpoints"].find({}))
    assert any(dst_db in json_util.dumps(doc) for doc in saved)
    assert PASSWORD not in json_util.dumps(saved)


async def test_in_process_run_keeps_the_password_out_of_reports_logs_and_dead_letters(
        monkeypatch, source_uri, target_uri, unique_db_name, tmp_path, caplog):
    load(source_uri, unique_db_name, "orders", [{"_id": i, "v": i} for i in range(1_000)])
    settings = load_settings(profile="dev", overrides={
        "mig_source_db_connection_string": with_password(source_uri),
        "mig_source_db_name": unique_db_name, "mig_source_db_collection": "orders",
        "mig_target_db_connection_string": with_password(target_uri),
        "mig_target_db_name": unique_db_name + "_t"})
    metrics = RunMetrics()
    InjectedServer(monkeypatch, f"{unique_db_name}_t.orders", metrics,
                   reject=lambda doc: doc["v"] % 100 == 1)
    caplog.set_level("DEBUG", logger="dataworks")
    report = await commands.migrate(settings, metrics=metrics, run_dir=tmp_path,
                                    checkpoint_store=f"file:{tmp_path / 'cp.json'}")
    assert report.rejected == 10 and Path(report.dead_letter_file).exists()
    assert "dwuser:****@" in report.source
    text = json.dumps(report.to_dict(), default=str) + repr(report) + report.closing_line()
    text += "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert PASSWORD not in text
    assert not scan_files(tmp_path)


def test_resume_hint_masks_the_password(monkeypatch):
    from dataworks.cli.migrate_cmd import resume_command

    monkeypatch.setattr(sys, "argv", ["dataworks", "migrate", "--source-uri",
                                      f"mongodb://u:{PASSWORD}@h:1/", "--force-from-start"])
    hint = resume_command()
    assert PASSWORD not in hint and "u:****@h:1" in hint and "--force-from-start" not in hint


# -- the source is only read ---------------------------------------------------------------

WRITE_NAMES = [
    "insert_one", "insert_many", "update_one", "update_many", "replace_one", "delete_one",
    "delete_many", "bulk_write", "drop", "rename", "create_index", "create_indexes",
    "create_search_index", "drop_index", "drop_indexes", "find_one_and_delete",
    "find_one_and_replace", "find_one_and_update", "with_options", "database", "client",
    "get_collection", "command", "watch", "aggregate_raw_batches",
]


async def test_source_collection_exposes_no_write_path(source_uri, unique_db_name):
    settings = load_settings(profile="dev", overrides={
        "mig_source_db_connection_string": source_uri, "mig_source_db_name": unique_db_name,
        "mig_source_db_collection": "orders"})
    endpoint = source_endpoint(settings)
    client = connect(endpoint)
    try:
        source = ReadOnlyCollection(client[endpoint.db][endpoint.collection])
        for view in (source, source.raw):
            for name in WRITE_NAMES:
                assert not hasattr(view, name), f"ReadOnlyCollection.{name} exists"
            public = {n for n in dir(view) if not n.startswith("_")}
            writes = public & {n for n in WRITE_NAMES}
            assert not writes
            for name in public:  # nothing public hands out the driver objects
                value = getattr(view, name)
                if not callable(value):
                    assert isinstance(value, str | ReadOnlyCollection), (name, type(value))
        cursors = [source.find({}), source.find({}).sort("_id", 1).limit(5).clone(),
                   source.find_raw_batches({}), await source.aggregate([{"$match": {}}])]
        for cursor in cursors:  # no way back to the driver's collection, session or client
            for name in ("collection", "session", "_collection", "_Cursor__collection",
                         "_ReadOnlyCursor__cursor_x", "client", "database"):
                assert not hasattr(cursor, name), name
            assert await cursor.to_list() == []  # still a working cursor
        with pytest.raises(PermissionError):
            await source.aggregate([{"$match": {}}, {"$out": "elsewhere"}])
        with pytest.raises(PermissionError):
            await source.aggregate([{"$merge": {"into": "elsewhere"}}])
        members = {n for n, _ in inspect.getmembers(ReadOnlyCollection) if not n.startswith("_")}
        assert members <= {"raw", "find", "find_raw_batches", "find_one", "count_documents",
                           "estimated_document_count", "aggregate", "explain_find",
                           "list_indexes", "exists", "fast_count", "collection_stats"}, members
    finally:
        await client.close()


async def test_migration_leaves_the_source_byte_identical(source_uri, target_uri,
                                                          unique_db_name, tmp_path):
    load(source_uri, unique_db_name, "orders", mixed_documents(3_000, seed=2))
    with MongoClient(source_uri) as client:
        client[unique_db_name]["orders"].create_index("n")
        before_docs = raw_by_id(source_uri, unique_db_name, "orders")
        before_indexes = list(client[unique_db_name]["orders"].list_indexes())
        before_dbs = set(client.list_database_names())
        before_colls = client[unique_db_name].list_collection_names()
    strategy = tmp_path / "reshape.py"
    strategy.write_text(
        "from dataworks import BaseMigrationStrategy\n"
        "class Reshape(BaseMigrationStrategy):\n"
        "    async def transform(self, doc):\n"
        "        doc['copied'] = True\n"
        "        doc.pop('blob', None)\n"
        "        return doc\n")
    settings = load_settings(profile="dev", overrides={
        "mig_source_db_connection_string": source_uri, "mig_source_db_name": unique_db_name,
        "mig_source_db_collection": "orders", "mig_target_db_connection_string": target_uri,
        "mig_target_db_name": unique_db_name + "_t"})
    for kwargs in ({}, {"strategy": str(strategy), "drop_target": True}):
        report = await commands.migrate(settings, run_dir=tmp_path, **kwargs)
        assert report.status == "completed"
    with MongoClient(source_uri) as client:
        assert list(client[unique_db_name]["orders"].list_indexes()) == before_indexes
        assert set(client.list_database_names()) == before_dbs
        assert client[unique_db_name].list_collection_names() == before_colls
    assert raw_by_id(source_uri, unique_db_name, "orders") == before_docs
