"""Kill the real `dataworks migrate` process at several points; the re-run must end exact."""

from __future__ import annotations

from bson import json_util
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from pymongo import MongoClient

from dataworks.testing.proxy import FaultProxy
from tests.migration_helpers import assert_identical, load, mixed_documents

DOCS = 20_000


# Reads by `_id` ranges (what MongoDB and Cosmos DB get) even though FerretDB cannot seek
# them, so that their resume path is tested on a real server too.
RANGES_STRATEGY = """
from dataworks import BaseMigrationStrategy

class Ranges(BaseMigrationStrategy):
    async def partitions(self, planner):
        return await planner.plan_ranges(3)
"""


# Reads in natural order (what FerretDB gets by default) on a server that can seek `_id`
# ranges too, so that the natural-order resume path is tested on every test server.
NATURAL_STRATEGY = """
from dataworks import BaseMigrationStrategy
from dataworks.migrations.partitioning import NATURAL, Partition

class Natural(BaseMigrationStrategy):
    async def partitions(self, planner):
        return [Partition(0, NATURAL)]
"""


def reading_strategy(reading: str, test_server, tmp_path: Path) -> str | None:
    """The strategy that makes the run read `reading` ("natural"/"id_ranges") on this server;
    None where the server's default already does."""
    if reading == "natural":
        if not test_server.can("seek_id_ranges"):
            return None
        name, source = "Natural", NATURAL_STRATEGY
    else:
        name, source = "Ranges", RANGES_STRATEGY
    path = tmp_path / f"{name.lower()}.py"
    path.write_text(source)
    return f"{path}:{name}"


def start_migrate(source_uri, target_uri, src_db, dst_db, store, cwd: Path,
                  strategy: str | None = None, **more_env: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "FRAMEWORK_CHECKPOINT_INTERVAL": "500",
        "MIG_BATCH_SIZE": "250",
        "FRAMEWORK_MAX_INSERT_WORKERS": "4",
        **more_env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "dataworks", "migrate", "--profile", "dev",
         "--source-uri", source_uri, "--source-db", src_db, "--source-collection", "orders",
         "--target-uri", target_uri, "--target-db", dst_db, "--target-collection", "orders",
         "--checkpoint-store", store, *(["--strategy", strategy] if strategy else [])],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def checkpointed(store: str, target_uri: str, dst_db: str) -> int:
    """Documents the saved checkpoint vouches for (0 when none yet)."""
    if store.startswith("file:"):
        path = Path(store[5:])
        if not path.exists():
            return 0
        try:
            return int(json_util.loads(path.read_text()).get("done_count", 0))
        except ValueError:  # being replaced at this instant; atomic rename means retry works
            return 0
    with MongoClient(target_uri) as client:
        doc = client["dataworks_meta"]["checkpoints"].find_one(
            {"target": {"$regex": f"{dst_db}\\.orders$"}}
        )
    return int(doc["done_count"]) if doc else 0


def wait_then_kill(proc, condition, timeout=240.0) -> bool:
    """SIGKILL once `condition()` holds; False if the run ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if condition():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.05)
    proc.kill()
    pytest.fail("migration made no progress before the timeout")


@contextlib.contextmanager
def slow_link(target_uri: str) -> Iterator[FaultProxy]:
    """The target behind a link that waits 0.1 s per chunk each way, so that a SIGINT sent
    once 1,000 documents are checkpointed lands mid-copy on a fast server too. Every run of
    a test goes through it (the run's identity includes the target's host and port);
    `link.delay(0)` makes it fast again."""
    with FaultProxy(int(urlparse(target_uri).port or 27017)) as link:
        link.delay(0.1)
        yield link


def interrupt_once_checkpointed(proc, store, target_uri, dst_db, at_least=1_000) -> str:
    """SIGINT once the checkpoint vouches for `at_least` documents; its stderr (exit 130)."""
    deadline = time.monotonic() + 240
    while checkpointed(store, target_uri, dst_db) < at_least:
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    return err


@pytest.fixture(scope="module")
def resume_source(source_uri):
    db = "dw_resume_src"
    load(source_uri, db, "orders", mixed_documents(DOCS, seed=11))
    return db


@pytest.mark.parametrize(("store_kind", "reading"),
                         [("file", "natural"), ("target", "natural"), ("file", "id_ranges")])
def test_sigkill_at_several_points_then_resume_is_exact(store_kind, reading, resume_source,
                                                         source_uri, target_uri, test_server,
                                                         unique_db_name, tmp_path):
    store = f"file:{tmp_path / 'ckpt.json'}" if store_kind == "file" else "target"
    strategy = reading_strategy(reading, test_server, tmp_path)

    def run():
        return start_migrate(source_uri, target_uri, resume_source, unique_db_name, store,
                             tmp_path, strategy)

    kills = 0
    # 1: early, before the first batch is acknowledged (planning / first read).
    proc = run()
    time.sleep(0.8)
    kills += wait_then_kill(proc, lambda: True)
    # 2..4: mid-stream, right after checkpoints vouch for growing amounts.
    for threshold in (2_000, 8_000, 14_000):
        proc = run()
        kills += wait_then_kill(
            proc, lambda t=threshold: checkpointed(store, target_uri, unique_db_name) >= t
        )
    # 5: at an arbitrary instant between checkpoints.
    proc = run()
    time.sleep(1.7)
    kills += wait_then_kill(proc, lambda: True)

    final = run()
    out, err = final.communicate(timeout=600)
    assert final.returncode == 0, err
    assert kills >= 4, "the kills should land before the migration finished"
    if store_kind == "file":  # the reading the test claims is the one that ran
        saved = json_util.loads(Path(store[5:]).read_text())["partitions"]
        assert ({p["group"] for p in saved} == {"natural"}) == (reading == "natural"), saved
    assert f"{DOCS:,}" in out  # target count in the summary
    assert assert_identical((source_uri, resume_source, "orders"),
                            (target_uri, unique_db_name, "orders")) == DOCS

    again = run()
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0 and "nothing to do" in out


def test_sigint_saves_checkpoint_exits_130_and_resumes(resume_source, source_uri, target_uri,
                                                        unique_db_name, tmp_path):
    store = f"file:{tmp_path / 'ckpt.json'}"
    with slow_link(target_uri) as link:
        proc = start_migrate(source_uri, link.uri, resume_source, unique_db_name, store,
                             tmp_path)
        err = interrupt_once_checkpointed(proc, store, target_uri, unique_db_name)
        assert "run the same command again to resume: dataworks migrate" in err
        saved = checkpointed(store, target_uri, unique_db_name)
        assert 1_000 <= saved < DOCS

        link.delay(0)
        final = start_migrate(source_uri, link.uri, resume_source, unique_db_name, store,
                              tmp_path)
        _, err = final.communicate(timeout=600)
    assert final.returncode == 0, err
    assert assert_identical((source_uri, resume_source, "orders"),
                            (target_uri, unique_db_name, "orders")) == DOCS


def test_resume_refuses_a_source_changed_under_a_natural_order_read(source_uri, target_uri,
                                                                      test_server,
                                                                      unique_db_name, tmp_path):
    """FerretDB cannot seek `_id` ranges, so the run reads in natural order and resumes by
    position; when documents before that position change, resuming must stop and say so
    (not skip or double anything), and --force-from-start must then end exact."""
    src_db = f"{unique_db_name}_src"
    load(source_uri, src_db, "orders", mixed_documents(8_000, seed=5))
    store = f"file:{tmp_path / 'ckpt.json'}"
    strategy = reading_strategy("natural", test_server, tmp_path)
    with slow_link(target_uri) as link:
        proc = start_migrate(source_uri, link.uri, src_db, unique_db_name, store, tmp_path,
                             strategy)
        interrupt_once_checkpointed(proc, store, target_uri, unique_db_name)
        link.delay(0)
        saved = json_util.loads(Path(store[5:]).read_text())
        mark = saved["partitions"][0]["high_water"]
        assert saved["partitions"][0]["group"] == "natural"
        assert mark["read"] == saved["done_count"] and len(mark["ids_sha256"]) == 64

        with MongoClient(source_uri) as client:  # the test, not the tool, changes the source
            orders = client[src_db]["orders"]
            first = orders.find_one({}, {"_id": 1})  # natural order: inside the copied prefix
            orders.delete_one({"_id": first["_id"]})

        again = start_migrate(source_uri, link.uri, src_db, unique_db_name, store, tmp_path,
                              strategy)
        _, err = again.communicate(timeout=300)
        assert again.returncode == 2, err
        assert "the source changed" in err and "--force-from-start" in err
        assert "Traceback" not in err

        env = {**os.environ, "MIG_BATCH_SIZE": "250"}
        fresh = subprocess.run(
            [sys.executable, "-m", "dataworks", "migrate", "--profile", "dev",
             "--source-uri", source_uri, "--source-db", src_db, "--source-collection", "orders",
             "--target-uri", link.uri, "--target-db", unique_db_name,
             "--target-collection", "orders", "--checkpoint-store", store, "--force-from-start",
             "--verify", "none", *(["--strategy", strategy] if strategy else [])],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False,
        )
    assert fresh.returncode == 0, fresh.stderr
    # The deleted document was already copied: the target keeps it, everything else equal.
    with MongoClient(target_uri) as client:
        client[unique_db_name]["orders"].delete_one({"_id": first["_id"]})
    assert assert_identical((source_uri, src_db, "orders"),
                            (target_uri, unique_db_name, "orders")) == 7_999


WORKERS, BATCH = 4, 250  # what start_migrate sets: the in-flight bound is WORKERS x BATCH x 2


def summary_number(out: str, label: str) -> int:
    """A number from the summary table printed at the end of a run."""
    match = re.search(rf"{label}\s*│\s*([\d,]+)", out)
    assert match, f"no '{label}' in the summary:\n{out}"
    return int(match.group(1).replace(",", ""))


@pytest.mark.parametrize(("store_kind", "reading"), [
    ("file", "natural"), ("target", "natural"), ("file", "id_ranges"), ("target", "id_ranges"),
])
def test_a_resumed_run_sends_only_what_is_left(store_kind, reading, resume_source, source_uri,
                                               target_uri, unique_db_name, test_server,
                                               tmp_path):
    """SIGKILL at about half; the next run must start from the checkpoint, not from zero:
    it sends at most the remaining documents plus what may have been in flight."""
    store = f"file:{tmp_path / 'ckpt.json'}" if store_kind == "file" else "target"
    strategy = reading_strategy(reading, test_server, tmp_path)
    # Through a slow proxy, so that on a fast server the kill at a half lands mid-copy rather
    # than after the run finished (a target store's saves lag behind the copy itself); both
    # runs use it (the target is part of the run's identity).
    with FaultProxy(int(urlparse(target_uri).port or 27017)) as link:
        link.delay(0.05)
        proc = start_migrate(source_uri, link.uri, resume_source, unique_db_name, store,
                             tmp_path, strategy)

        def half_done() -> bool:
            return checkpointed(store, target_uri, unique_db_name) >= DOCS // 2

        assert wait_then_kill(
            proc, half_done,
            timeout=900,  # range reads scan on FerretDB: slow on a busy machine
        ), "the run ended before the kill"
        link.delay(0)
        final = start_migrate(source_uri, link.uri, resume_source, unique_db_name, store,
                              tmp_path, strategy)
        out, err = final.communicate(timeout=600)
    assert final.returncode == 0, err
    resumed = summary_number(out, "resumed from")
    sent = summary_number(out, "written") + summary_number(out, "already present")
    assert resumed >= DOCS // 2
    assert sent <= DOCS - resumed + WORKERS * BATCH * 2, (sent, resumed)
    assert assert_identical((source_uri, resume_source, "orders"),
                            (target_uri, unique_db_name, "orders")) == DOCS


LOOKUP_STRATEGY = """
from dataworks import BaseMigrationStrategy

class Regions(BaseMigrationStrategy):
    regions = {}  # what a run that skipped on_start would transform with

    async def on_start(self):
        self.regions = {i: f"region-{i}" for i in range(10)}

    def transform(self, doc):
        doc["region"] = self.regions.get(doc["n"] % 10)
        return doc
"""


def test_on_start_runs_again_on_a_resumed_run(resume_source, source_uri, target_uri,
                                              unique_db_name, tmp_path):
    """The lookup `on_start` loads must be there for the documents a resumed run copies.
    Transformed in the migration process: transform worker processes run their own
    `on_start` anyway."""
    (tmp_path / "regions.py").write_text(LOOKUP_STRATEGY)
    strategy = f"{tmp_path / 'regions.py'}:Regions"
    store = f"file:{tmp_path / 'ckpt.json'}"
    in_process = {"MIG_TRANSFORM_WORKERS": "0"}
    proc = start_migrate(source_uri, target_uri, resume_source, unique_db_name, store,
                         tmp_path, strategy, **in_process)
    assert wait_then_kill(
        proc, lambda: checkpointed(store, target_uri, unique_db_name) >= DOCS // 4
    ), "the run ended before the kill"
    final = start_migrate(source_uri, target_uri, resume_source, unique_db_name, store,
                          tmp_path, strategy, **in_process)
    out, err = final.communicate(timeout=600)
    assert final.returncode == 0, err
    assert summary_number(out, "resumed from") > 0
    with MongoClient(target_uri) as client:
        orders = client[unique_db_name]["orders"]
        assert orders.count_documents({}) == DOCS
        assert orders.count_documents({"region": None}) == 0
