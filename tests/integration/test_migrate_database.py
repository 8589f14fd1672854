"""A whole database in one `dataworks migrate`: include/exclude/rename patterns, a strategy
map, collection options, one summary, exact resume per collection after SIGKILL."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from bson import Int64, ObjectId
from pymongo import ASCENDING, DESCENDING, MongoClient
from pymongo.errors import OperationFailure

from dataworks.migrations import collection_options as copts
from dataworks.testing.proxy import FaultProxy
from tests.migration_helpers import assert_identical, load, mixed_documents, raw_by_id

TRANSFORM = """
from dataworks import BaseMigrationStrategy

class Stamp(BaseMigrationStrategy):
    def transform(self, doc):
        doc["migrated"] = True
        return doc
"""


def dataworks(*args: str, cwd: Path, env: dict[str, str] | None = None,
              timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dataworks", *args], cwd=cwd,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout, check=False)


def shapes(n: int, kind: str) -> list[dict[str, Any]]:
    if kind == "str":
        return [{"_id": f"k-{i:06d}", "v": i} for i in range(n)]
    if kind == "int":
        return [{"_id": Int64(i * 3), "v": str(i)} for i in range(n)]
    if kind == "oid":
        return [{"_id": ObjectId(), "v": i, "nested": {"a": {"b": {"c": [i, {"d": i}]}}}}
                for i in range(n)]
    return mixed_documents(n, seed=n)


def is_ferretdb(uri: str) -> bool:
    with MongoClient(uri) as client:
        return "ferretdb" in str(client.admin.command("buildInfo")).lower()


def supports(client: MongoClient, **options: Any) -> bool:
    """Does this server keep a collection created with these options (or this view)?
    Accepting them is not enough: mongo-java-server accepts and drops them."""
    db = client["dw_capability_probe"]
    name = f"p{ObjectId()}"
    try:
        db.command({"create": name, **options})
        kept = next((i for i in db.list_collections() if i["name"] == name), {}
                    ).get("options") or {}
        return all(key in kept for key in options)
    except OperationFailure:
        return False
    finally:
        db.drop_collection(name)


@pytest.fixture(scope="module")
def source_db(source_uri: str) -> dict[str, Any]:
    """dw_db_src: 15 collections of different shapes and sizes (+ dw_db_src2 with two)."""
    src, src2 = "dw_db_src", "dw_db_src2"
    sizes = {"big": ("mixed", 3000), "medium": ("mixed", 1200), "small": ("mixed", 150),
             "tiny": ("mixed", 3), "strings": ("str", 400), "ints": ("int", 400),
             "nested": ("oid", 300), "legacy_customers": ("mixed", 250),
             "indexed": ("mixed", 500), "stamped": ("mixed", 200),
             "audit_2024": ("mixed", 100), "audit_2025": ("mixed", 100),
             "orders_archive": ("mixed", 100)}
    docs = {}
    for name, (kind, n) in sizes.items():
        docs[name] = shapes(n, kind)
        load(source_uri, src, name, docs[name])
    load(source_uri, src2, "extra", shapes(120, "str"))
    load(source_uri, src2, "other", shapes(10, "str"))
    features: list[str] = []  # options and views this server keeps
    with MongoClient(source_uri) as client:
        db = client[src]
        db.drop_collection("empty")
        db.create_collection("empty")
        db.drop_collection("capped")
        capped = supports(client, capped=True, size=1 << 20)  # mongo-java-server: no
        db.create_collection("capped", **({"capped": True, "size": 1 << 20} if capped else {}))
        db["capped"].insert_many([{"_id": i, "line": f"log {i}"} for i in range(40)])
        if capped:
            features.append("capped")
        db["indexed"].create_index([("n", ASCENDING)], unique=True, name="n_unique")
        db["indexed"].create_index([("customer.name", ASCENDING), ("when", DESCENDING)],
                                   name="customer_when")
        # Where the server has them (FerretDB has none of these): a validator, a collation,
        # a view over a renamed collection.
        if supports(client, validator={"n": {"$exists": True}}):
            db.drop_collection("validated")
            db.create_collection("validated", validator={"n": {"$exists": True}},
                                 validationAction="error")
            db["validated"].insert_many([{"_id": i, "n": i} for i in range(50)])
            features.append("validated")
        if supports(client, collation={"locale": "sv"}):
            db.drop_collection("swedish")
            db.create_collection("swedish", collation={"locale": "sv"})
            db["swedish"].insert_many([{"_id": i, "name": w} for i, w in
                                       enumerate(["åsa", "örjan", "zack"])])
            features.append("swedish")
        if supports(client, viewOn="big", pipeline=[]):
            db.drop_collection("big_view")
            db.command({"create": "big_view", "viewOn": "legacy_customers",
                        "pipeline": [{"$match": {"flag": True}}]})
            features.append("big_view")
    return {"src": src, "src2": src2, "docs": docs, "features": features}


def write_map(tmp_path: Path) -> Path:
    (tmp_path / "stamp.py").write_text(TRANSFORM)
    path = tmp_path / "map.toml"
    path.write_text(
        '[[namespace]]\nmatch = "dw_db_src.stamped"\nstrategy = "stamp.py:Stamp"\n'
        'verify = "hash"\n'
        '[[namespace]]\nmatch = "dw_db_src.*_archive"\nskip = true\n')
    return path


def selection_args(source_uri: str, target_uri: str, dst: str) -> list[str]:
    return ["--profile", "dev", "--source-uri", source_uri, "--target-uri", target_uri,
            "--source-db", "dw_db_src", "--source-db", "dw_db_src2",
            "--ns-include", "dw_db_src.*", "--ns-include", "dw_db_src2.extra",
            "--ns-exclude", "*.audit_*",
            "--ns-from", "dw_db_src.legacy_$c$", "--ns-to", f"{dst}.$c$",
            "--ns-from", "dw_db_src.$c$", "--ns-to", f"{dst}.$c$",
            "--ns-from", "dw_db_src2.$c$", "--ns-to", f"{dst}.from2_$c$"]


def test_database_in_one_command(source_db, source_uri, target_uri, unique_db_name, tmp_path):
    dst, src = unique_db_name, source_db["src"]
    report_file = tmp_path / "report.json"
    done = dataworks("migrate", *selection_args(source_uri, target_uri, dst),
                     "--strategy-map", str(write_map(tmp_path)), "--parallel-collections", "3",
                     "--verify", "hash", "--create-indexes", "--report", str(report_file),
                     cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr

    report = json.loads(report_file.read_text())
    rows = {r["source"]: r for r in report["collections"]}
    optional = [f for f in source_db["features"] if f not in ("big_view", "capped")]
    copied = ["big", "medium", "small", "tiny", "strings", "ints", "nested", "indexed",
              "empty", "capped", *optional]
    expected_targets = {f"{src}.{n}": f"{dst}.{n}" for n in copied}
    expected_targets |= {f"{src}.legacy_customers": f"{dst}.customers",
                         f"{src}.stamped": f"{dst}.stamped",
                         f"{src}.orders_archive": f"{dst}.orders_archive",
                         "dw_db_src2.extra": f"{dst}.from2_extra"}
    if "big_view" in source_db["features"]:
        expected_targets[f"{src}.big_view"] = f"{dst}.big_view"
    assert {s: r["target"] for s, r in rows.items()} == expected_targets
    assert rows[f"{src}.orders_archive"]["status"] == "skipped"
    assert report["ok"] is True and len(rows) >= 14

    # Every included collection byte-exact, each verified equal by hash.
    pairs = [(n, n) for n in copied] + [("legacy_customers", "customers")]
    for s, t in pairs:
        assert_identical((source_uri, src, s), (target_uri, dst, t))
        assert rows[f"{src}.{s}"]["verification"]["equal"] is True
        assert rows[f"{src}.{s}"]["status"] == "completed"
    assert_identical((source_uri, "dw_db_src2", "extra"), (target_uri, dst, "from2_extra"))
    # Equal through its strategy: the transform's output, nothing else.
    source_stamped = raw_by_id(source_uri, src, "stamped")
    with MongoClient(target_uri) as client:
        stamped = list(client[dst]["stamped"].find())
        assert len(stamped) == len(source_stamped) == 200
        assert all(d["migrated"] is True for d in stamped)
        names = set(client[dst].list_collection_names())
        # Excluded, skipped and not-included collections are absent.
        assert not names & {"audit_2024", "audit_2025", "orders_archive", "other",
                            "from2_other", "legacy_customers"}
        assert "empty" in names
        infos = {i["name"]: i for i in client[dst].list_collections()}
        if "capped" in source_db["features"]:
            assert infos["capped"]["options"].get("capped") is True
        index_names = {i["name"] for i in client[dst]["indexed"].list_indexes()}
        assert {"n_unique", "customer_when"} <= index_names
        if "validated" in source_db["features"]:
            assert infos["validated"]["options"]["validator"] == {"n": {"$exists": True}}
        if "swedish" in source_db["features"]:
            assert infos["swedish"]["options"]["collation"]["locale"] == "sv"
        if "big_view" in source_db["features"]:
            assert infos["big_view"]["options"]["viewOn"] == "customers"
    totals = report["totals"]
    assert totals["migrated"] == sum(r["migrated"] for r in rows.values())
    assert totals["migrated"] == totals["source_count"]

    # The summary table has a row per collection and a total row.
    assert f"{src}.big" in done.stdout and "total" in done.stdout
    listed = dataworks("checkpoints", "list", "--target-uri", target_uri, cwd=tmp_path)
    assert report["run_id"] in listed.stdout
    assert f"{len(rows)} / {len(rows)} collections" in listed.stdout

    again = dataworks("migrate", *selection_args(source_uri, target_uri, dst),
                      "--strategy-map", str(write_map(tmp_path)), "--verify", "hash",
                      "--report", str(report_file), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    rerun = json.loads(report_file.read_text())
    assert {r["status"] for r in rerun["collections"]} <= {"already finished", "skipped",
                                                            "view created"}
    assert sum(r["read"] for r in rerun["collections"]) == 0


def test_single_collection_form_is_unchanged(source_db, source_uri, target_uri, unique_db_name,
                                             tmp_path):
    done = dataworks("migrate", "--profile", "dev", "--source-uri", source_uri,
                     "--source-db", source_db["src"], "--source-collection", "small",
                     "--target-uri", target_uri, "--target-db", unique_db_name,
                     "--target-collection", "copy", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "database run" not in done.stdout
    with MongoClient(target_uri) as client:
        assert client[unique_db_name].list_collection_names() == ["copy"]
    assert_identical((source_uri, source_db["src"], "small"), (target_uri, unique_db_name, "copy"))
    # The collection named by the environment (not the command line) keeps the single form.
    env = {"MIG_SOURCE_DB_COLLECTION": "tiny"}
    done = dataworks("migrate", "--profile", "dev", "--source-uri", source_uri,
                     "--source-db", source_db["src"], "--target-uri", target_uri,
                     "--target-db", unique_db_name, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    with MongoClient(target_uri) as client:
        assert sorted(client[unique_db_name].list_collection_names()) == ["copy", "tiny"]


@pytest.mark.parametrize("extra, message", [
    (["--ns-include", "dw_db_src.nothing_*"],
     r"--ns-include 'dw_db_src\.nothing_\*' matches no collection.*dw_db_src\.big"),
    (["--ns-exclude", "nowhere.*"], r"--ns-exclude 'nowhere\.\*' matches no collection"),
    (["--ns-from", "dw_db_src.$c$", "--ns-to", "DST.all"],
     r"would all be copied to DST\.all"),
    (["--strategy-map", "MAP"], r"strategy file .*missing\.py does not exist"),
    (["--source-db", "dw_no_such_db"], r"source database dw_no_such_db does not exist"),
])
def test_refusals_before_anything_is_written(source_db, source_uri, target_uri,
                                             unique_db_name, tmp_path, extra, message):
    (tmp_path / "map.toml").write_text(
        '[[namespace]]\nmatch = "dw_db_src.big"\nstrategy = "missing.py"\n')
    extra = [a.replace("MAP", str(tmp_path / "map.toml")).replace("DST", unique_db_name)
             for a in extra]
    base = ["migrate", "--profile", "dev", "--source-uri", source_uri, "--target-uri",
            target_uri, "--target-db", unique_db_name]
    if "--source-db" not in extra:
        base += ["--source-db", "dw_db_src"]
    with MongoClient(target_uri) as client:
        before = client["dataworks_meta"]["checkpoints"].count_documents({})
    done = dataworks(*base, *extra, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    message = message.replace("DST", unique_db_name)
    assert re.search(message, done.stderr.replace("\n", " ")), done.stderr
    with MongoClient(target_uri) as client:
        assert unique_db_name not in client.list_database_names()
        assert client["dataworks_meta"]["checkpoints"].count_documents({}) == before


def test_a_strategy_map_that_skips_every_collection_is_refused(source_db, source_uri,
                                                              target_uri, unique_db_name,
                                                              tmp_path):
    """Nothing migrated must not end in exit 0 and 'completed': a `skip` glob that takes
    every selected collection is refused before anything is written, like --ns-exclude
    patterns that leave nothing."""
    (tmp_path / "skip.toml").write_text('[[namespace]]\nmatch = "dw_db_src2.*"\nskip = true\n')
    with MongoClient(target_uri) as client:
        before = client["dataworks_meta"]["checkpoints"].count_documents({})
    done = dataworks("migrate", "--profile", "dev", "--source-uri", source_uri,
                     "--source-db", source_db["src2"], "--target-uri", target_uri,
                     "--target-db", unique_db_name, "--strategy-map",
                     str(tmp_path / "skip.toml"), cwd=tmp_path)
    text = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 2, text
    assert "the strategy map skips every selected collection: nothing to copy" in text
    assert "dw_db_src2.extra" in text and "dw_db_src2.other" in text
    with MongoClient(target_uri) as client:
        assert unique_db_name not in client.list_database_names()
        assert client["dataworks_meta"]["checkpoints"].count_documents({}) == before


def test_check_strategy_map_checks_every_file(tmp_path):
    (tmp_path / "good.py").write_text(TRANSFORM)
    (tmp_path / "map.toml").write_text(
        '[[namespace]]\nmatch = "a.b"\nstrategy = "good.py"\n'
        '[[namespace]]\nmatch = "a.c"\nstrategy = "gone.py"\n'
        '[[namespace]]\nmatch = "a.*"\nskip = true\n')
    done = dataworks("check", "--strategy-map", str(tmp_path / "map.toml"), cwd=tmp_path)
    assert done.returncode == 2
    assert "ok: " in done.stdout and "good.py" in done.stdout
    assert "gone.py" in done.stdout and "does not exist" in done.stdout


def test_options_the_target_cannot_take_are_reported(target_uri, unique_db_name):
    """Whatever the target refuses or silently drops comes back as a note, and the collection
    still exists for the data (run against the real target server)."""
    import asyncio

    from pymongo import AsyncMongoClient

    wanted = {"collation": {"locale": "sv", "strength": 1}, "clusteredIndex": {
        "key": {"_id": 1}, "unique": True}, "timeseries": {"timeField": "t"}}

    async def go() -> tuple[list[str], list[str], list[str], list[str]]:
        client: AsyncMongoClient[Any] = AsyncMongoClient(target_uri)
        try:
            db = client[unique_db_name]
            notes = []
            for name, options in wanted.items():
                notes.append(await copts.create_like_source(
                    db, name, {"name": name, "type": "collection", "options": {name: options}}))
            validator = await copts.apply_validation(
                db, "collation", {"options": {"validator": {"n": {"$exists": True}}}})
            view = await copts.create_view(db, "v", {"type": "view", "options": {
                "viewOn": "collation", "pipeline": [{"$match": {"n": 1}}]}}, "collation")
            names = await db.list_collection_names()
            return [n[0] if n else "" for n in notes], validator, view, names
        finally:
            await client.close()

    notes, validator, view, names = asyncio.run(go())
    with MongoClient(target_uri) as client:
        probe_view = supports(client, viewOn="x", pipeline=[])
        probe_validator = supports(client, validator={"n": {"$exists": True}})
    for key, note in zip(wanted, notes, strict=True):
        with MongoClient(target_uri) as client:
            kept = next(i for i in client[unique_db_name].list_collections()
                        if i["name"] == key)
        if kept["options"].get(key) is None:
            assert key in note, (key, note)  # dropped or refused: reported
        assert key in names  # the collection is there for the data
    assert bool(validator) != probe_validator, validator
    assert bool(view) != probe_view, view


def _run_doc(target_uri: str) -> dict[str, Any] | None:
    with MongoClient(target_uri) as client:
        return client["dataworks_meta"]["checkpoints"].find_one(
            {"kind": "database", "collections.target": {"$regex": "^dw_kill_"}})


def _progress(target_uri: str, dst: str) -> tuple[int, int]:
    """(collections finished per the run document, collections part-way through their copy
    per checkpoints)."""
    doc = _run_doc(target_uri)
    finished = sum(c.get("status") == "completed" for c in (doc or {}).get("collections", []))
    with MongoClient(target_uri) as client:
        # Part-way through the copy (not in its indexes or verify phase: phases.py).
        partial = client["dataworks_meta"]["checkpoints"].count_documents(
            {"target": {"$regex": f" {dst}\\."}, "phase": "copy", "done_count": {"$gt": 0}})
    return finished, partial


def test_sigkill_mid_database_run_then_same_command(source_uri, target_uri, tmp_path):
    src, dst = "dw_kill_src", f"dw_kill_{ObjectId()}"
    scale = 1 if is_ferretdb(source_uri) else 8  # faster servers: more, to kill mid-run
    sizes = [n * scale for n in (2400, 2200, 2000, 1800, 1600, 1400, 1200, 1000, 800, 600,
                                 400, 200)]
    for i, n in enumerate(sizes):
        load(source_uri, src, f"c{i:02d}", mixed_documents(n, seed=i))
    with MongoClient(target_uri) as client:  # a run document of an earlier test run
        client["dataworks_meta"]["checkpoints"].delete_many(
            {"kind": "database", "collections.target": {"$regex": "^dw_kill_"}})
    args = ["migrate", "--profile", "dev", "--source-uri", source_uri, "--source-db", src,
            "--target-db", dst, "--parallel-collections", "2",
            "--verify", "hash", "--report", str(tmp_path / "report.json")]
    env = {**os.environ, "MIG_BATCH_SIZE": "200", "FRAMEWORK_CHECKPOINT_INTERVAL": "200"}
    # Both runs reach the target through a proxy (the target is part of the run's identity);
    # it slows to a crawl once three collections are done, so the kill lands mid-copy however
    # fast the servers are, and is quick again for the second run.
    with FaultProxy(int(urlparse(target_uri).port or 27017)) as link:
        args += ["--target-uri", link.uri]
        proc = subprocess.Popen([sys.executable, "-m", "dataworks", *args], cwd=tmp_path,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no progress"
            finished, partial = _progress(target_uri, dst)
            if finished >= 3:
                link.delay(0.05)
            if finished >= 3 and partial >= 1:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                break
            time.sleep(0.05)
        link.delay(0)
        doc = _run_doc(target_uri)
        assert doc is not None
        finished_before = {c["source"] for c in doc["collections"] if c["status"] == "completed"}
        not_started = {c["source"] for c in doc["collections"] if c["status"] == "not started"}
        assert len(finished_before) >= 3 and not_started, doc["collections"]

        again = dataworks(*args, cwd=tmp_path, env=env)
        assert again.returncode == 0, again.stdout + again.stderr
        report = json.loads((tmp_path / "report.json").read_text())
        rows = {r["source"]: r for r in report["collections"]}
        for i, n in enumerate(sizes):
            name = f"c{i:02d}"
            assert assert_identical((source_uri, src, name), (target_uri, dst, name)) == n
            row = rows[f"{src}.{name}"]
            assert row["verification"]["equal"] is True, row
            if row["source"] in finished_before:  # not re-read; its verification is recorded
                assert row["status"] == "already finished" and row["read"] == 0, row
                assert row["verified_earlier"] is True
            elif row["status"] == "already finished":
                # Its data was in but the kill came before its verification: verified now.
                assert row["read"] == 0 and row["verified_earlier"] is False, row
            else:
                assert row["status"] == "completed", row
        resumed = [r for r in rows.values() if r["status"] == "completed" and r["resumed_from"]]
        assert resumed, "a collection part-way at the kill should resume from its checkpoint"
        assert all(r["read"] <= r["source_count"] - r["resumed_from"] for r in resumed)


def test_a_collection_that_differs_fails_the_run(source_uri, target_uri, unique_db_name,
                                                 tmp_path):
    """One collection's target already holds a different version of a document, merged into
    and kept (--keep-existing): hash verification finds it, the run exits 1."""
    src, dst = f"{unique_db_name}_src", unique_db_name
    load(source_uri, src, "fine", shapes(100, "str"))
    load(source_uri, src, "clash", shapes(100, "str"))
    with MongoClient(target_uri) as client:
        client[dst]["clash"].insert_one({"_id": "k-000007", "v": "not the source's"})
    report_file = tmp_path / "report.json"
    done = dataworks("migrate", "--profile", "dev", "--source-uri", source_uri,
                     "--source-db", src, "--target-uri", target_uri, "--target-db", dst,
                     "--verify", "hash", "--merge", "--keep-existing",
                     "--report", str(report_file), cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"1 of 2 collections are not right: {src}.clash (differs)" in done.stderr
    assert "hash: DIFFERENT" in done.stdout
    rows = {r["source"]: r for r in json.loads(report_file.read_text())["collections"]}
    assert rows[f"{src}.fine"]["ok"] is True
    clash = rows[f"{src}.clash"]
    # (not "already present": the target's version differs, and was kept)
    assert clash["ok"] is False and clash["already_present"] == 0
    assert clash["migrated"] == 99  # whatever count the insert reply gives
    assert clash["verification"]["changed_count"] == 1
    assert "target documents differ from the source and were kept" in done.stdout


def test_sigint_stops_every_collection_and_prints_the_table(source_uri, target_uri,
                                                            unique_db_name, tmp_path):
    src, dst = f"{unique_db_name}_src", unique_db_name
    n = 1500 * (1 if is_ferretdb(source_uri) else 8)
    for i in range(4):
        load(source_uri, src, f"c{i}", mixed_documents(n, seed=i))
    args = ["migrate", "--profile", "dev", "--source-uri", source_uri, "--source-db", src,
            "--target-uri", target_uri, "--target-db", dst, "--verify", "count"]
    env = {**os.environ, "MIG_BATCH_SIZE": "100", "FRAMEWORK_CHECKPOINT_INTERVAL": "100"}
    proc = subprocess.Popen([sys.executable, "-m", "dataworks", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while _progress(target_uri, dst)[1] < 1:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    assert "run the same command again to resume: dataworks migrate" in err
    assert "interrupted" in out and "not started" in out  # the table of what was done
    again = dataworks(*args, cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr
    for i in range(4):
        assert assert_identical((source_uri, src, f"c{i}"), (target_uri, dst, f"c{i}")) == n


def test_killed_between_data_and_verification_is_verified_on_the_rerun(
        source_uri, target_uri, unique_db_name, tmp_path):
    """The engine marks a collection finished once its data is in; a kill during its
    verification leaves the database run without its outcome. The rerun must verify it
    (here it finds a document removed from the target meanwhile), not call it done."""
    src, dst = f"{unique_db_name}_src", unique_db_name
    load(source_uri, src, "a", shapes(50, "str"))
    load(source_uri, src, "b", shapes(60, "int"))
    args = ["migrate", "--profile", "dev", "--source-uri", source_uri, "--source-db", src,
            "--target-uri", target_uri, "--target-db", dst, "--verify", "hash",
            "--report", str(tmp_path / "report.json")]
    assert dataworks(*args, cwd=tmp_path).returncode == 0
    run_id = json.loads((tmp_path / "report.json").read_text())["run_id"]
    with MongoClient(target_uri) as client:
        runs = client["dataworks_meta"]["checkpoints"]
        doc = runs.find_one({"_id": run_id})
        for c in doc["collections"]:
            if c["source"] == f"{src}.b":  # as if killed while verifying b
                c["status"], c["verification"] = "running", None
        runs.replace_one({"_id": run_id}, doc)
        client[dst]["b"].delete_one({"_id": Int64(3)})
    again = dataworks(*args, cwd=tmp_path)
    assert again.returncode == 1, again.stdout + again.stderr
    rows = {r["source"]: r for r in json.loads((tmp_path / "report.json").read_text())
            ["collections"]}
    b, a = rows[f"{src}.b"], rows[f"{src}.a"]
    assert b["status"] == "already finished" and b["read"] == 0
    assert b["verification"]["equal"] is False and b["verification"]["missing_count"] == 1
    assert a["verified_earlier"] is True and a["verification"]["equal"] is True


def test_collections_share_the_insert_workers(source_uri, target_uri, unique_db_name):
    """Three collections at once with two insert workers: never more than two inserts in
    flight for the whole run (every engine takes its permits from the run's one limiter)."""
    import asyncio

    from dataworks import commands
    from dataworks.config.settings import load_settings
    from dataworks.migrations.namespaces import Selection

    src, dst = f"{unique_db_name}_src", unique_db_name
    for i in range(3):
        load(source_uri, src, f"c{i}", mixed_documents(1200, seed=i))
    settings = load_settings(profile="dev", overrides={
        "mig_source_db_connection_string": source_uri, "mig_target_db_connection_string":
        target_uri, "max_insert_workers": 2, "mig_batch_size": 100})
    holder: list[Any] = []
    peaks = {"in_flight": 0, "running": 0, "both": 0}

    async def sample() -> None:
        while True:
            run = holder[0] if holder else None
            if run is not None and run.limiter is not None:
                in_flight, running = run.limiter.in_use, len(run.running())
                peaks["in_flight"] = max(peaks["in_flight"], in_flight)
                peaks["running"] = max(peaks["running"], running)
                if in_flight and running >= 2:
                    peaks["both"] += 1
            await asyncio.sleep(0.002)

    async def go() -> Any:
        sampler = asyncio.create_task(sample())
        try:
            return await commands.migrate_database(
                settings, Selection(source_dbs=(src,), target_db=dst),
                parallel_collections=3, run=holder, verify="none")
        finally:
            sampler.cancel()

    report = asyncio.run(go())
    assert report.ok and report.totals()["migrated"] == 3600
    assert peaks["running"] == 3 and peaks["both"] > 0, peaks
    assert 1 <= peaks["in_flight"] <= 2, peaks


def test_a_failing_collection_fails_the_run_and_the_others_finish(source_uri, target_uri,
                                                                  unique_db_name, tmp_path):
    src, dst = f"{unique_db_name}_src", unique_db_name
    load(source_uri, src, "good", shapes(80, "str"))
    load(source_uri, src, "bad", shapes(80, "int"))
    (tmp_path / "raises.py").write_text(
        "from dataworks import BaseMigrationStrategy\n"
        "class Raises(BaseMigrationStrategy):\n"
        "    def transform(self, doc):\n"
        "        raise ValueError('no')\n")
    (tmp_path / "map.toml").write_text(
        f'[[namespace]]\nmatch = "{src}.bad"\nstrategy = "raises.py"\n')
    report_file = tmp_path / "report.json"
    done = dataworks("migrate", "--profile", "dev", "--source-uri", source_uri,
                     "--source-db", src, "--target-uri", target_uri, "--target-db", dst,
                     "--strategy-map", str(tmp_path / "map.toml"), "--report", str(report_file),
                     cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{src}.bad (failed)" in done.stderr
    rows = {r["source"]: r for r in json.loads(report_file.read_text())["collections"]}
    assert rows[f"{src}.bad"]["status"] == "failed" and "ValueError" in rows[f"{src}.bad"]["error"]
    assert rows[f"{src}.good"]["status"] == "completed" and rows[f"{src}.good"]["ok"] is True
    assert_identical((source_uri, src, "good"), (target_uri, dst, "good"))


def test_checkpoints_delete_of_a_database_run_deletes_its_collections(
        source_uri, target_uri, unique_db_name, tmp_path):
    src, dst = f"{unique_db_name}_src", unique_db_name
    load(source_uri, src, "a", shapes(30, "str"))
    load(source_uri, src, "b", shapes(20, "int"))
    store = f"file:{tmp_path / 'ckpt'}/"
    args = ["migrate", "--profile", "dev", "--source-uri", source_uri, "--source-db", src,
            "--target-uri", target_uri, "--target-db", dst, "--checkpoint-store", store,
            "--report", str(tmp_path / "report.json")]
    assert dataworks(*args, cwd=tmp_path).returncode == 0
    run_id = json.loads((tmp_path / "report.json").read_text())["run_id"]
    assert len(list((tmp_path / "ckpt").glob("*.json"))) == 3
    deleted = dataworks("checkpoints", "delete", run_id, "--checkpoint-store", store,
                        cwd=tmp_path)
    assert deleted.returncode == 0, deleted.stderr
    assert f"deleted checkpoint of run {run_id} and of its 2 collections" in deleted.stdout
    assert list((tmp_path / "ckpt").glob("*.json")) == []
    refused = dataworks(*args, cwd=tmp_path)  # the targets are no longer known as its copy
    assert refused.returncode == 1, refused.stderr
    assert "already holds" in refused.stdout + refused.stderr
    again = dataworks(*args, "--merge", cwd=tmp_path)  # merged: everything already present
    assert again.returncode == 0, again.stderr
    rows = json.loads((tmp_path / "report.json").read_text())["collections"]
    assert {r["status"] for r in rows} == {"completed"}
    assert sum(r["already_present"] for r in rows) == 50
