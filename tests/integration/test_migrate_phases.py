"""Finishing is part of the run (issue 13): the checkpoint records copy -> indexes -> verify
-> done, a DIFFERENT verification is never followed by "nothing to do", `--repair` fixes
what it listed, and a build killed half-way is finished by running the engine again."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from bson import json_util
from pymongo import MongoClient

from tests.migration_helpers import assert_identical, load, mixed_documents

# Reads by `_id` ranges (what MongoDB and Cosmos DB get) on any server.
RANGES_STRATEGY = """
from dataworks import BaseMigrationStrategy

class Ranges(BaseMigrationStrategy):
    async def partitions(self, planner):
        return await planner.plan_ranges(3)
"""


def dataworks(*args: str, cwd: Path, env: dict | None = None, timeout: float = 600
              ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dataworks", *args], cwd=cwd,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout, check=False)


def endpoints(source_uri: str, src: str, target_uri: str, dst: str) -> list[str]:
    return ["--source-uri", source_uri, "--source-db", src, "--source-collection", "orders",
            "--target-uri", target_uri, "--target-db", dst, "--target-collection", "orders"]


def merge_option(cwd: Path) -> list[str]:
    """`--merge` (copy into a target that holds documents) once the version has it; until
    then a fresh run copies into a non-empty target without being asked."""
    helped = dataworks("migrate", "--help", cwd=cwd, env={"COLUMNS": "200"})
    return ["--merge"] if "--merge" in helped.stdout else []


def test_a_difference_fails_every_rerun_until_repaired(source_uri, target_uri, unique_db_name,
                                                       tmp_path):
    src = unique_db_name + "_src"
    load(source_uri, src, "orders", mixed_documents(3_000, seed=21))
    (tmp_path / "ranges.py").write_text(RANGES_STRATEGY)
    with MongoClient(target_uri) as client:  # a stray document of a type the source lacks
        client[unique_db_name]["orders"].insert_one({"_id": {"stray": 1}, "n": -1})
    sides = endpoints(source_uri, src, target_uri, unique_db_name)
    store = f"file:{tmp_path / 'ckpt.json'}"
    migrate = ["migrate", *sides, "--strategy", f"{tmp_path / 'ranges.py'}:Ranges",
               "--verify", "hash", "--checkpoint-store", store, *merge_option(tmp_path)]

    first = dataworks(*migrate, cwd=tmp_path)
    assert first.returncode == 1, first.stderr
    assert "DIFFERENT" in first.stdout and "extra 1" in first.stdout
    listed = next(tmp_path.glob(".dataworks/runs/*/differences.json"))
    assert json.loads(listed.read_text())["extra_ids"] == [{"stray": 1}]
    assert str(listed.relative_to(tmp_path)) in first.stderr.replace("\n", "")

    # Not verifying does not prove the differences gone: exit 1, and the run stays in
    # its verify phase (a --verify none rerun used to mark it done).
    blind = [a if a != "hash" else "none" for a in migrate]
    unproven = dataworks(*blind, cwd=tmp_path)
    assert unproven.returncode == 1, unproven.stdout + unproven.stderr
    assert "--verify none cannot prove them gone" in unproven.stderr.replace("\n", " ")
    assert "nothing to do" not in dataworks(*blind, cwd=tmp_path).stdout
    assert listed.exists()

    # The target is damaged after the run: three documents gone, two changed.
    with MongoClient(source_uri) as client:
        ids = [d["_id"] for d in client[src]["orders"].find({}, {"_id": 1}).limit(5)]
    with MongoClient(target_uri) as client:
        orders = client[unique_db_name]["orders"]
        orders.delete_many({"_id": {"$in": ids[:3]}})
        orders.update_many({"_id": {"$in": ids[3:]}}, {"$set": {"n": -2}})

    again = dataworks(*migrate, cwd=tmp_path)
    assert again.returncode == 1, again.stdout + again.stderr
    assert "nothing to do" not in again.stdout
    assert "missing 3, extra 1, changed 2" in again.stdout
    assert "continued with its verify phase" in again.stdout

    # A `verify --report` file drives the repair: missing and changed are re-copied; the
    # extra document stays (no --delete-extra), so the verdict is still DIFFERENT.
    report = tmp_path / "report.json"
    checked = dataworks("verify", "--mode", "hash", "--report", str(report), *sides,
                        cwd=tmp_path)
    assert checked.returncode == 1, checked.stderr
    repaired = dataworks(*migrate, "--repair-from", str(report), cwd=tmp_path)
    assert repaired.returncode == 1, repaired.stdout + repaired.stderr
    assert "5 re-copied of 5 listed" in repaired.stdout
    assert "missing 0, extra 1, changed 0" in repaired.stdout
    assert "--delete-extra deletes" in repaired.stdout

    cleaned = dataworks(*migrate, "--repair", "--delete-extra", cwd=tmp_path)
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert "hash: EQUAL" in cleaned.stdout and "1 extra deleted" in cleaned.stdout
    assert re.search(r"target count\s*│\s*3,000\s", cleaned.stdout), cleaned.stdout
    assert not listed.exists()
    assert assert_identical((source_uri, src, "orders"),
                            (target_uri, unique_db_name, "orders")) == 3_000

    done = dataworks(*migrate, cwd=tmp_path)
    assert done.returncode == 0 and "nothing to do" in done.stdout


def _secondary_indexes(uri: str, db: str) -> set[str]:
    with MongoClient(uri) as client:
        return {name for name in client[db]["orders"].index_information() if name != "_id_"}


INDEXED_FIELDS = ["n", "price", "when", "customer.name", "customer.address.zip", "tags",
                  "big", "flag"]


def test_sigkill_during_the_deferred_index_build_is_finished_by_the_next_run(
        source_uri, target_uri, unique_db_name, tmp_path):
    """Kill the real process after its first deferred index is built and before the last;
    running the same migrate command again (the engine, not the index functions) builds the
    rest and verifies."""
    src = unique_db_name + "_src"
    load(source_uri, src, "orders", mixed_documents(20_000, seed=4))
    with MongoClient(source_uri) as client:
        for field in INDEXED_FIELDS:
            client[src]["orders"].create_index(field)
    wanted = {f"{field}_1" for field in INDEXED_FIELDS}
    store = tmp_path / "ckpt.json"
    command = [sys.executable, "-m", "dataworks", "migrate",
               *endpoints(source_uri, src, target_uri, unique_db_name),
               "--disable-indexes", "--checkpoint-store", f"file:{store}"]
    env = {**os.environ, "MIG_BATCH_SIZE": "1000"}
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    killed = False
    while time.monotonic() < deadline and proc.poll() is None:
        built = _secondary_indexes(target_uri, unique_db_name)
        if built and built < wanted:
            proc.send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(0.01)
    proc.wait()
    assert killed, "the run ended before the kill: " + proc.stdout.read()
    left = wanted - _secondary_indexes(target_uri, unique_db_name)
    assert left, "every index was built before the kill landed"
    assert json_util.loads(store.read_text())["phase"] == "indexes"

    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=600, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing to do" not in again.stdout
    assert "continued with its indexes phase" in again.stdout
    assert _secondary_indexes(target_uri, unique_db_name) == wanted
    assert "count: EQUAL" in again.stdout
    assert json_util.loads(store.read_text())["phase"] == "done"
