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
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote_plus

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
# What a pasted Cosmos key or a generated password holds: / + = @ :, and an AWS session token
# in authMechanismProperties. Each piece between the special characters is distinctive, so a
# partial leak (the text after an unescaped "/", say) is caught too.
HARD_PASSWORD = "pw7Qx/Zr8+Lk2=@:Jd5Vn"
TOKEN = "IQoJtok9/AWSsess+Tk4=="
SRC_DB = "dw_secret_src"


class Secrets:
    def __init__(self, password: str, token: str | None = None) -> None:
        self.password, self.token = password, token

    def uri(self, base: str, *, escaped: bool = True) -> str:
        pw = quote_plus(self.password)
        if not escaped:  # the "/" pasted as is; the rest escaped
            pw = pw.replace("%2F", "/")
        options = "authMechanism=PLAIN"
        if self.token:
            options += f"&authMechanismProperties=AWS_SESSION_TOKEN:{quote_plus(self.token)}"
        return base.replace("mongodb://", f"mongodb://dwuser:{pw}@") + "?" + options

    def pieces(self) -> list[str]:
        found = []
        for secret in filter(None, (self.password, self.token)):
            found += [secret, quote_plus(secret)]
            found += [p for p in re.split(r"[/+=@:]", secret) if len(p) >= 3]
        return found

    def leaked(self, text: str | bytes) -> list[str]:
        data = text.encode() if isinstance(text, str) else text
        return [p for p in self.pieces() if p.encode() in data]


PLAIN = Secrets(PASSWORD)
HARD = Secrets(HARD_PASSWORD, TOKEN)


def with_password(uri: str) -> str:
    return PLAIN.uri(uri)


def supports(command: str, option: str) -> bool:
    result = subprocess.run([sys.executable, "-m", "dataworks", *command.split(), "--help"],
                            capture_output=True, text=True, check=False,
                            env={**os.environ, "COLUMNS": "300"})
    return option in result.stdout


def scan_files(root: Path, secrets: Secrets = PLAIN) -> list[str]:
    leaks = []
    for path in root.rglob("*"):
        if path.is_file() and secrets.leaked(path.read_bytes()):
            leaks.append(f"{path}: {secrets.leaked(path.read_bytes())}")
    return leaks


# Needs a server that takes a password (FerretDB takes any with PLAIN; mongo-java-server has no
# authentication and refuses every login).
@pytest.mark.needs("authenticate")
@pytest.mark.parametrize("secrets", [PLAIN, HARD], ids=["plain", "slash-plus-token"])
def test_every_command_keeps_the_password_out_of_output_and_files(source_uri, target_uri,
                                                                  tmp_path, secrets):
    load(source_uri, SRC_DB, "orders", mixed_documents(2_000, seed=1))
    src, dst = secrets.uri(source_uri), secrets.uri(target_uri)
    suffix = "_hard" if secrets.token else ""  # run identities hold no credentials
    dst_db, gen_db = "dw_secret_dst" + suffix, "dw_secret_gen" + suffix
    with MongoClient(target_uri) as client:
        client.drop_database(dst_db)
        client.drop_database(gen_db)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MIG_", "GEN_"))}
    env.update({"MIG_SOURCE_DB_CONNECTION_STRING": src, "MIG_SOURCE_DB_NAME": SRC_DB,
                "MIG_SOURCE_DB_COLLECTION": "orders", "MIG_TARGET_DB_CONNECTION_STRING": dst,
                "MIG_TARGET_DB_NAME": dst_db, "GEN_DB_CONNECTION_STRING": dst,
                "GEN_DB_NAME": gen_db, "GEN_DB_COLLECTION": "gen", "COLUMNS": "200",
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
        (["migrate", "--target-uri", secrets.uri("mongodb://127.0.0.1:1/"), "--debug"], 2),
        (["generate", "--source", TEMPLATE, "--uri", secrets.uri("mongodb://127.0.0.1:1/"),
          "--debug"], 2),
        (["migrate", "--source-uri", "http://dwuser:" + secrets.password + "@host/"], 2),
    ]
    # the key pasted with its "/" unescaped: the driver cannot read it; every command says
    # so (exit 2) without showing it, in text and JSON logs, with and without --debug
    pasted = secrets.uri(source_uri, escaped=False)
    if "/" in secrets.password:
        runs += [
            (["config", "show", "--source-uri", pasted], 2),
            (["migrate", "--source-uri", pasted, "--debug"], 2),
            (["migrate", "--target-uri", secrets.uri(target_uri, escaped=False),
              "--log-format", "json"], 2),
            (["verify", "--source-uri", pasted, "--mode", "sample"], 2),
            (["indexes", "compare", "--source-uri", pasted], 2),
            (["generate", "--source", TEMPLATE, "--uri", pasted, "--debug"], 2),
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
        shown = " ".join(a if not secrets.leaked(a) else "<uri>" for a in args)
        if expected is not None:
            assert result.returncode == expected, f"{shown}: {result.stderr[-2000:]}"
        assert not secrets.leaked(result.stdout), f"{secrets.leaked(result.stdout)} on " \
            f"stdout of: {shown}"
        assert not secrets.leaked(result.stderr), f"{secrets.leaked(result.stderr)} on " \
            f"stderr of: {shown}: {result.stderr[-1500:]}"
    assert (tmp_path / "state").exists() and (tmp_path / "gen_state").exists()
    assert not scan_files(tmp_path, secrets), f"secrets in files: {scan_files(tmp_path, secrets)}"
    if (ROOT / ".dataworks").exists():
        assert not scan_files(ROOT / ".dataworks", secrets)
    with MongoClient(target_uri) as client:
        saved = list(client["dataworks_meta"]["checkpoints"].find({}))
        gen_saved = list(client["dataworks_meta"].list_collection_names())
        everything = [doc for name in gen_saved
                      for doc in client["dataworks_meta"][name].find({})]
    assert any(dst_db in json_util.dumps(doc) for doc in saved)
    assert not secrets.leaked(json_util.dumps(everything))


@pytest.mark.needs("authenticate")
async def test_in_process_run_keeps_the_password_out_of_reports_logs_and_dead_letters(
        monkeypatch, source_uri, target_uri, unique_db_name, tmp_path, caplog):
    load(source_uri, unique_db_name, "orders", [{"_id": i, "v": i} for i in range(1_000)])
    settings = load_settings(profile="dev", overrides={
        "mig_source_db_connection_string": HARD.uri(source_uri),
        "mig_source_db_name": unique_db_name, "mig_source_db_collection": "orders",
        "mig_target_db_connection_string": HARD.uri(target_uri),
        "mig_target_db_name": unique_db_name + "_t"})
    metrics = RunMetrics()
    InjectedServer(monkeypatch, f"{unique_db_name}_t.orders", metrics,
                   reject=lambda doc: doc["v"] % 100 == 1)
    caplog.set_level("DEBUG", logger="dataworks")
    report = await commands.migrate(settings, metrics=metrics, run_dir=tmp_path,
                                    checkpoint_store=f"file:{tmp_path / 'cp.json'}")
    assert report.rejected == 10 and Path(report.dead_letter_file).exists()
    assert report.source.startswith("127.0.0.1:") and "dwuser" not in report.source
    text = json.dumps(report.to_dict(), default=str) + repr(report) + report.closing_line()
    text += "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert not HARD.leaked(text), HARD.leaked(text)
    assert not scan_files(tmp_path, HARD)


def test_resume_hint_names_the_settings_instead_of_a_masked_uri(monkeypatch):
    from dataworks.cli.common import CommonOptions
    from dataworks.cli.migrate_cmd import resume_hint

    uri = HARD.uri("mongodb://h:1/")
    monkeypatch.setenv("MIG_TARGET_DB_CONNECTION_STRING", HARD.uri("mongodb://t:2/"))
    monkeypatch.setattr(sys, "argv", ["dataworks", "migrate", "--source-uri", uri,
                                      "--force-from-start", "--batch-size", "10"])
    settings = load_settings(overrides={"mig_source_db_connection_string": uri})
    hint = resume_hint(settings, CommonOptions())
    assert not HARD.leaked(hint) and "****" not in hint, hint
    assert "dataworks migrate --source-uri '<source connection string>' --batch-size 10" in hint
    assert "--force-from-start" not in hint
    assert "the source from --source-uri (pass the same one)" in hint
    assert "the target from environment variable MIG_TARGET_DB_CONNECTION_STRING" in hint


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
                   source.find_raw_batches({}), await source.aggregate([{"$match": {}}]),
                   source.find_raw_documents({})]
        for cursor in cursors:  # no way back to the driver's collection, session or client
            for name in ("collection", "session", "_collection", "_Cursor__collection",
                         "_ReadOnlyCursor__cursor_x", "client", "database"):
                assert not hasattr(cursor, name), name
            assert [d async for d in cursor] == []  # still a working cursor
        pages = source.find_raw_pages({}, batch_size=10)  # natural-order reads
        for name in ("collection", "session", "_collection", "_session", "client",
                     "database"):
            assert not hasattr(pages, name), name
        assert [d async for page in pages for d in page] == []
        with pytest.raises(PermissionError):
            await source.aggregate([{"$match": {}}, {"$out": "elsewhere"}])
        with pytest.raises(PermissionError):
            await source.aggregate([{"$merge": {"into": "elsewhere"}}])
        members = {n for n, _ in inspect.getmembers(ReadOnlyCollection) if not n.startswith("_")}
        assert members <= {"raw", "find", "find_raw_batches", "find_raw_documents",
                           "find_raw_pages", "find_one",
                           "count_documents",
                           "estimated_document_count", "aggregate", "explain_find",
                           "list_indexes", "exists", "fast_count", "collection_stats",
                           "change_stream"}, members
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
        # One server for both sides (DATAWORKS_TEST_MONGO_URI): the target's databases are here.
        target_side = {unique_db_name + "_t", "dataworks_meta"} if source_uri == target_uri \
            else set()
        assert set(client.list_database_names()) - target_side == before_dbs - target_side
        assert client[unique_db_name].list_collection_names() == before_colls
    assert raw_by_id(source_uri, unique_db_name, "orders") == before_docs
