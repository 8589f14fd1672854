"""`dataworks generate` against the real test server: types, determinism, exact resume."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bson import Binary, Int64, ObjectId

from dataworks.config.settings import load_settings
from dataworks.errors import CheckpointError, Interrupted, UserError
from dataworks.generators.run import generate
from dataworks.monitoring.metrics import RunMetrics

ROOT = Path(__file__).resolve().parents[2]
VOLVO = str(ROOT / "user_defined/generators/volvo_generator.py")
TEMPLATE = str(ROOT / "user_defined/templates/service_order_template.json")


def _settings(uri: str, db: str, collection: str, **extra):
    return load_settings(overrides={"gen_db_connection_string": uri, "gen_db_name": db,
                                    "gen_db_collection": collection, **extra})


async def test_volvo_generator_writes_n_typed_documents(mongo_uri, mongo_client, unique_db_name):
    report = await generate(_settings(mongo_uri, unique_db_name, "orders"), VOLVO, total=2_500,
                            seed=11, batch_size=500, workers=1, write_workers=2)
    coll = mongo_client[unique_db_name]["orders"]
    assert report.written == 2_500 and await coll.count_documents({}) == 2_500
    doc = await coll.find_one({"orderNumber": "SO-0000000042"})
    assert isinstance(doc["_id"], ObjectId)
    assert isinstance(doc["createdAt"], dt.datetime) and isinstance(doc["vehicle"]["modelYear"], int)
    assert isinstance(doc["totals"]["total"], float) and isinstance(doc["jobs"], list)
    assert isinstance(doc["jobs"][0]["parts"], list) and doc["dealer"]["workshop"]["workshopId"]
    await mongo_client.drop_database(unique_db_name)


async def test_template_writes_n_typed_documents(mongo_uri, mongo_client, unique_db_name):
    report = await generate(_settings(mongo_uri, unique_db_name, "tpl"), TEMPLATE, total=1_200,
                            seed=2, batch_size=250, workers=0, drop=True)
    coll = mongo_client[unique_db_name]["tpl"]
    assert report.written == 1_200 and await coll.count_documents({}) == 1_200
    doc = await coll.find_one({"sequenceNo": 7})
    assert isinstance(doc["sequenceNo"], int) and doc["orderNumber"] == "SO-1000006"
    assert isinstance(doc["externalRef"], Binary) and doc["externalRef"].subtype == 4
    assert isinstance(doc["dealer"]["dealerId"], ObjectId)
    assert isinstance(doc["vehicle"]["mileageKm"], (int, Int64)) and doc["invoiceId"] is None
    assert isinstance(doc["updatedAt"], dt.datetime) and doc["updatedAt"].year == 2025
    assert 1 <= len(doc["jobs"]) <= 3 and isinstance(doc["vehicle"]["electric"], bool)
    # Every document's mileage is a 64-bit integer (a query `$type`: mongo-java-server has no
    # `$type` aggregation expression).
    assert await coll.count_documents({"vehicle.mileageKm": {"$type": "long"}}) == 1_200
    await mongo_client.drop_database(unique_db_name)


async def test_same_seed_same_documents_with_one_and_two_workers(mongo_uri, mongo_client,
                                                                 unique_db_name):
    for name, workers in (("one", 1), ("two", 2)):
        await generate(_settings(mongo_uri, unique_db_name, name), VOLVO, total=1_500, seed=99,
                       batch_size=200, workers=workers, write_workers=3)
    db = mongo_client[unique_db_name]
    one = await db["one"].find({}).sort("_id", 1).to_list()
    two = await db["two"].find({}).sort("_id", 1).to_list()
    assert len(one) == 1_500 and one == two
    await mongo_client.drop_database(unique_db_name)


async def test_cancelled_run_resumes_to_exactly_n(mongo_uri, mongo_client, unique_db_name):
    settings = _settings(mongo_uri, unique_db_name, "resume", checkpoint_interval=400)
    metrics = RunMetrics()
    task = asyncio.create_task(generate(settings, TEMPLATE, total=6_000, seed=5, batch_size=200,
                                        workers=1, write_workers=2, metrics=metrics))
    while metrics.written < 1_000:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(Interrupted):
        await task
    coll = mongo_client[unique_db_name]["resume"]
    partial = await coll.count_documents({})
    assert 1_000 <= partial < 6_000
    with pytest.raises(CheckpointError):  # a resume must keep the run's parameters
        await generate(settings, TEMPLATE, total=7_000, resume=True, workers=1)
    report = await generate(settings, TEMPLATE, resume=True, workers=2)
    assert report.resumed and report.seed == 5 and report.documents == 6_000
    assert await coll.count_documents({}) == 6_000
    seqs = await coll.distinct("sequenceNo")
    assert sorted(seqs) == list(range(1, 6_001))
    await mongo_client.drop_database(unique_db_name)


async def test_killed_cli_run_resumes_to_exactly_n(mongo_uri, mongo_client, unique_db_name,
                                                   tmp_path):
    """SIGKILL: no chance to save; the periodic checkpoint and duplicate-key no-ops suffice.
    The SAME command, run again, resumes (no --resume needed), and its summary on stdout
    matches the collection. The run is long enough (and the poll cheap enough: collStats, not
    a counting scan) that the kill lands mid-run even on a quiet machine."""
    TOTAL = 20_000
    env = {**os.environ, "GEN_DB_CONNECTION_STRING": mongo_uri, "GEN_DB_NAME": unique_db_name,
           "GEN_DB_COLLECTION": "killed", "FRAMEWORK_CHECKPOINT_INTERVAL": "300"}
    store = f"file:{tmp_path / 'state'}"
    args = [sys.executable, "-m", "dataworks", "generate", "--source", VOLVO, "--total", str(TOTAL),
            "--batch-size", "200", "--generation-workers", "1", "--insert-workers", "1",
            "--checkpoint-store", store, "-q"]
    proc = subprocess.Popen(args, env=env, cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    coll = mongo_client[unique_db_name]["killed"]
    deadline = time.monotonic() + 60
    while (await mongo_client[unique_db_name].command("collStats", "killed"))["count"] < 800:
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = await coll.count_documents({})
    assert partial < TOTAL, "the kill should land before the run finished"
    result = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, check=False,
                            timeout=400)  # a loaded 2-core machine writes ~200 docs/s
    assert result.returncode == 0, result.stderr
    assert "resumed:" in result.stdout and "already present" in result.stdout
    assert f"total {TOTAL:,} of {TOTAL:,}" in result.stdout
    assert f"the collection holds {TOTAL:,} documents" in result.stdout
    assert await coll.count_documents({}) == TOTAL
    numbers = await coll.distinct("orderNumber")
    assert len(numbers) == TOTAL
    again = subprocess.run([*args, "--resume"], env=env, cwd=tmp_path, capture_output=True, check=False,
                           text=True, timeout=120)  # --resume: accepted, changes nothing
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("nothing to do:"), again.stdout
    assert await coll.count_documents({}) == TOTAL
    await mongo_client.drop_database(unique_db_name)


async def test_other_documents_are_refused_until_drop_target(mongo_uri, mongo_client,
                                                            unique_db_name):
    """A collection holding documents no saved run accounts for would end with more than
    --total: refused (exit 2) before anything is written; --drop-target starts clean."""
    coll = mongo_client[unique_db_name]["taken"]
    await coll.insert_many([{"_id": i} for i in range(7)])
    settings = _settings(mongo_uri, unique_db_name, "taken")
    with pytest.raises(UserError, match="already holds 7 documents.*--drop-target") as info:
        await generate(settings, TEMPLATE, total=300, seed=1, batch_size=100)
    assert info.value.exit_code == 2 and await coll.count_documents({}) == 7
    report = await generate(settings, TEMPLATE, total=300, seed=1, batch_size=100, drop=True)
    assert report.target_count == 300 and await coll.count_documents({}) == 300
    again = await generate(settings, TEMPLATE, total=300)
    assert again.status == "nothing to do" and again.written == 0
    with pytest.raises(CheckpointError, match="--total 301 differs from the finished run"):
        await generate(settings, TEMPLATE, total=301)
    with pytest.raises(UserError, match="--force-from-start discards the saved run"):
        await generate(settings, TEMPLATE, total=300, force_from_start=True)
    assert await coll.count_documents({}) == 300
    await mongo_client.drop_database(unique_db_name)


async def test_two_ctrl_c_stop_at_once_with_one_line(mongo_uri, mongo_client, unique_db_name,
                                                     tmp_path):
    """The second Ctrl-C does not wait for the checkpoint: one line says what that means.
    Deterministic: the target is reached through a proxy that turns into a 60 s-per-chunk
    link after the first press, so the graceful stop is still saving when the second comes."""
    from urllib.parse import urlparse

    from dataworks.testing.proxy import FaultProxy

    with FaultProxy(int(urlparse(mongo_uri).port or 27017)) as link:
        env = {**os.environ, "GEN_DB_CONNECTION_STRING": link.uri,
               "GEN_DB_NAME": unique_db_name, "GEN_DB_COLLECTION": "twice"}
        args = [sys.executable, "-m", "dataworks", "generate", "--source", VOLVO, "--total",
                "200000", "--batch-size", "200", "--generation-workers", "1", "-q"]
        proc = subprocess.Popen(args, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while (await mongo_client[unique_db_name].command("collStats", "twice"))["count"] < 400:
            assert proc.poll() is None and time.monotonic() < deadline
            await asyncio.sleep(0.05)
        link.delay(60)
        proc.send_signal(signal.SIGINT)
        seen = []
        for line in proc.stderr:  # the first press is acknowledged before the second
            seen.append(line)
            if "press again" in line:
                break
        assert proc.poll() is None, "".join(seen)
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=60)
    stderr = "".join(seen) + rest
    assert proc.returncode == 130, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    stopped = [line for line in lines if "stopped at once" in line]
    assert len(stopped) == 1 and "the last checkpoint stands" in stopped[0], stderr
    assert "Traceback" not in stderr
    await mongo_client.drop_database(unique_db_name)
