"""Transforms in worker processes (`--transform-workers N`) against real servers: the same
target bytes as in-process, `on_start` in every worker, exact resume after SIGKILL, and
transform errors that name the user's file, line and source `_id`."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import bson
import psutil
import pytest
from pymongo import MongoClient

from dataworks import commands
from dataworks.core.clients import RAW_CODEC
from dataworks.core.dead_letter import read_records
from dataworks.testing import sample_from_generator
from tests.integration.test_migrate import settings_for
from tests.integration.test_migrate_resume import checkpointed, start_migrate
from tests.migration_helpers import load, mixed_documents, raw_by_id

ROOT = Path(__file__).resolve().parents[2]
VOLVO_GENERATOR = str(ROOT / "user_defined" / "generators" / "volvo_generator.py")
VOLVO_STRATEGY = str(ROOT / "user_defined" / "strategies" / "volvo_strategy.py")

STAMP = """
import os
from dataworks import BaseMigrationStrategy

class Stamp(BaseMigrationStrategy):
    async def on_start(self):
        self.started_in = os.getpid()

    def transform(self, doc):
        return {"_id": doc["_id"], "pid": os.getpid(), "started_in": self.started_in}
"""

MARK = """
from dataworks import BaseMigrationStrategy

class Mark(BaseMigrationStrategy):
    def transform(self, doc):
        doc["copied"] = True
        return doc
"""

RAISES = """from dataworks import BaseMigrationStrategy
class Bad(BaseMigrationStrategy):
    def transform(self, doc):
        return {'_id': doc['_id'], 'x': 1 / (doc['v'] - 333)}
"""


@pytest.fixture(scope="module")
def volvo_source(source_uri: str) -> str:
    db = "dw_transform_workers_volvo"
    load(source_uri, db, "orders", sample_from_generator(VOLVO_GENERATOR, count=3_000, seed=5))
    return db


async def test_worker_processes_write_the_same_bytes_as_in_process(
        volvo_source, source_uri, target_uri, unique_db_name, tmp_path) -> None:
    reports = {}
    for workers in (2, 0):
        settings = settings_for(source_uri, target_uri, volvo_source,
                                f"{unique_db_name}_{workers}", mig_batch_size=200)
        reports[workers] = await commands.migrate(
            settings, strategy=VOLVO_STRATEGY, transform_workers=workers,
            run_dir=tmp_path, verify="none")
    for report in reports.values():
        assert report.status == "completed"
        assert report.written == report.transformed == 3_000 and report.dropped == 0
    in_workers = raw_by_id(target_uri, f"{unique_db_name}_2", "orders")
    in_process = raw_by_id(target_uri, f"{unique_db_name}_0", "orders")
    assert len(in_workers) == 3_000
    assert in_workers == in_process  # byte for byte, every _id
    sample = bson.decode(next(iter(in_workers.values())))
    assert sample["schemaVersion"] == 2 and "totals" in sample  # the strategy did run


async def test_transforms_run_in_worker_processes_each_after_its_own_on_start(
        source_uri, target_uri, unique_db_name, tmp_path) -> None:
    src = f"{unique_db_name}_src"
    load(source_uri, src, "orders", [{"_id": i, "v": i} for i in range(2_000)])
    path = tmp_path / "stamp.py"
    path.write_text(STAMP)
    settings = settings_for(source_uri, target_uri, src, unique_db_name, mig_batch_size=100)
    report = await commands.migrate(settings, strategy=str(path), transform_workers=2,
                                    run_dir=tmp_path, verify="none")
    assert report.written == 2_000
    with MongoClient(target_uri) as client:
        docs = list(client[unique_db_name]["orders"].find())
    pids = {d["pid"] for d in docs}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2, pids
    assert all(d["started_in"] == d["pid"] for d in docs)  # on_start ran in that worker


def kill_with_workers(proc: subprocess.Popen, condition, timeout: float = 240.0) -> bool:
    """SIGKILL the migration once `condition()` holds; its transform workers must follow it
    (nothing else can stop them). False if the run ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if condition():
            children = psutil.Process(proc.pid).children(recursive=True)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            _, alive = psutil.wait_procs(children, timeout=15)
            assert not alive, f"transform workers outlived the killed migration: {alive}"
            return True
        time.sleep(0.05)
    proc.kill()
    pytest.fail("migration made no progress before the timeout")


def expected_marked(source_uri: str, db: str) -> dict[bytes, bytes]:
    """What MARK makes of each source document, encoded as the worker encodes it."""
    out = {}
    for key, raw in raw_by_id(source_uri, db, "orders").items():
        doc = bson.decode(raw)
        doc["copied"] = True
        out[key] = bson.encode(doc)
    return out


def test_sigkill_with_transform_workers_then_resume_is_exact(
        source_uri, target_uri, unique_db_name, tmp_path, monkeypatch) -> None:
    src = f"{unique_db_name}_src"
    load(source_uri, src, "orders", mixed_documents(12_000, seed=13))
    strategy = tmp_path / "mark.py"
    strategy.write_text(MARK)
    store = f"file:{tmp_path / 'ckpt.json'}"
    monkeypatch.setenv("MIG_TRANSFORM_WORKERS", "2")

    def run() -> subprocess.Popen:
        return start_migrate(source_uri, target_uri, src, unique_db_name, store, tmp_path,
                             str(strategy))

    kills = 0
    for threshold in (1_500, 6_000):
        kills += kill_with_workers(
            run(), lambda t=threshold: checkpointed(store, target_uri, unique_db_name) >= t)
    proc = run()
    time.sleep(2.5)  # an arbitrary instant between checkpoints
    kills += kill_with_workers(proc, lambda: True)

    final = run()
    out, err = final.communicate(timeout=600)
    assert final.returncode == 0, err
    assert kills >= 2, "the kills should land before the migration finished"
    assert "12,000" in out
    assert raw_by_id(target_uri, unique_db_name, "orders") == expected_marked(source_uri, src)


@pytest.mark.parametrize("workers", ["2", "0"])
def test_transform_error_names_file_line_and_id_then_resume_after_the_fix(
        workers, source_uri, target_uri, unique_db_name, tmp_path) -> None:
    src = f"{unique_db_name}_src"
    load(source_uri, src, "orders", [{"_id": i, "v": i} for i in range(1_000)])
    (tmp_path / "raises.py").write_text(RAISES)
    store = tmp_path / "ckpt.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MIG_", "FRAMEWORK_"))}
    argv = [sys.executable, "-m", "dataworks", "migrate", "--profile", "dev",
            "--source-uri", source_uri, "--source-db", src, "--source-collection", "orders",
            "--target-uri", target_uri, "--target-db", unique_db_name,
            "--target-collection", "orders", "--checkpoint-store", f"file:{store}",
            "--batch-size", "100", "--strategy", "raises.py", "--transform-workers", workers,
            # One cursor in `_id` order on every server: with parallel `_id` ranges (servers
            # that seek them) other ranges are rightly vouched for past the failing document.
            "--parallel-cursors", "1"]
    failed = subprocess.run(argv, cwd=tmp_path, env={**env, "COLUMNS": "250"},
                            capture_output=True, text=True, timeout=300, check=False)
    assert failed.returncode == 2, failed.stderr
    assert "Traceback" not in failed.stderr
    assert re.search(r"^error: raises\.py:4: the strategy's transform raised ZeroDivisionError: "
                     r"division by zero \(source document _id 333\)", failed.stderr, re.M), \
        failed.stderr
    # Nothing at or after the failing document is vouched for.
    assert checkpointed(f"file:{store}", target_uri, unique_db_name) <= 300

    # The fix gives every other document what it gave before: the target ends exact.
    (tmp_path / "raises.py").write_text(RAISES.replace(
        "1 / (doc['v'] - 333)", "1 / (doc['v'] - 333) if doc['v'] != 333 else 0"))
    fixed = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=300, check=False)
    assert fixed.returncode == 0, fixed.stderr
    with MongoClient(target_uri) as client:
        coll = client[unique_db_name].get_collection("orders", codec_options=RAW_CODEC)
        docs = {d["_id"]: d["x"] for d in coll.find()}
    assert docs == {i: 1 / (i - 333) if i != 333 else 0 for i in range(1_000)}


RENAME = """
from dataworks import BaseMigrationStrategy

class Rename(BaseMigrationStrategy):
    def transform(self, doc):
        doc["_id"] = f"order-{doc['_id']}"
        return doc
"""

KEEP = """
from dataworks import BaseMigrationStrategy

class Keep(BaseMigrationStrategy):
    def transform(self, doc):
        doc["seen"] = True
        return doc
"""


@pytest.mark.parametrize(("code", "target_id"), [(RENAME, "order-13"), (KEEP, 13)])
async def test_a_document_rejected_after_a_worker_transform_names_its_source_id(
        code, target_id, source_uri, target_uri, unique_db_name, tmp_path) -> None:
    """Workers send each output document's source `_id` back only when a transform changed
    some `_id`; either way a dead letter names the source document to read again."""
    src = f"{unique_db_name}_src"
    people = [{"_id": i, "email": f"p{i}@example.com"} for i in range(400)]
    people[13]["email"] = "p4@example.com"  # clashes with _id 4 under the unique index
    load(source_uri, src, "orders", people)
    with MongoClient(target_uri) as client:
        client[unique_db_name]["orders"].create_index("email", unique=True, name="email_1")
    path = tmp_path / "strategy.py"
    path.write_text(code)
    settings = settings_for(source_uri, target_uri, src, unique_db_name, mig_batch_size=50)
    report = await commands.migrate(settings, strategy=str(path), transform_workers=2,
                                    run_dir=tmp_path, verify="none", merge=True)
    assert (report.written, report.rejected) == (399, 1)
    [letters] = list(tmp_path.glob("*/dead_letter.jsonl"))
    [record] = read_records(letters)
    assert (record["_id"], record["source_id"]) == (target_id, 13)
