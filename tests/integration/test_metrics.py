"""Monitoring on the real server: --metrics-file from real runs (JSON and CSV), totals equal
to the run's own report, JSON logs that parse line by line, metered (Cosmos-kind) sides."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pymongo import MongoClient

from dataworks import commands
from dataworks.config import load_settings
from dataworks.monitoring.metrics import RunMetrics
from dataworks.monitoring.session import monitor_run
from tests.migration_helpers import load, mixed_documents

ROOT = Path(__file__).resolve().parents[2]
VOLVO = str(ROOT / "user_defined/generators/volvo_generator.py")
REPORT_TOTALS = ("read", "written", "already_present", "transformed", "dropped", "rejected",
                 "retries", "throttled", "resumed_from")


def loaded_migration(source_uri, target_uri, src, dst, count, **overrides):
    """Settings for migrating `count` small documents, loaded into `src.orders`."""
    load(source_uri, src, "orders", [{"_id": i, "v": i} for i in range(count)])
    return load_settings(profile="dev", overrides={
        "mig_source_db_connection_string": source_uri, "mig_source_db_name": src,
        "mig_source_db_collection": "orders", "mig_target_db_connection_string": target_uri,
        "mig_target_db_name": dst, **overrides})


def cli(args, env, cwd, timeout=120):
    return subprocess.run([sys.executable, "-m", "dataworks", *args], env={**os.environ, **env},
                          cwd=cwd, capture_output=True, text=True, timeout=timeout)


def json_lines(stderr: str) -> list[dict]:
    """Every stderr line must be one JSON object."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "no log lines at all"
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError as exc:  # pragma: no cover - the failure message
            raise AssertionError(f"not a JSON line: {line!r}") from exc
    return parsed


def table_value(stdout: str, key: str) -> int:
    match = re.search(rf"│\s*{re.escape(key)}\s*│\s*([\d,]+)", stdout)
    assert match, stdout
    return int(match.group(1).replace(",", ""))


def migrate_env(source_uri, target_uri, src_db, dst_db, coll="orders"):
    return {"MIG_SOURCE_DB_CONNECTION_STRING": source_uri, "MIG_SOURCE_DB_NAME": src_db,
            "MIG_SOURCE_DB_COLLECTION": coll, "MIG_TARGET_DB_CONNECTION_STRING": target_uri,
            "MIG_TARGET_DB_NAME": dst_db, "MIG_TARGET_DB_COLLECTION": coll,
            "FRAMEWORK_PROFILE": "dev"}


def test_generate_cli_json_metrics_and_json_logs(mongo_uri, unique_db_name, tmp_path):
    metrics_file = tmp_path / "gen.json"
    env = {"GEN_DB_CONNECTION_STRING": mongo_uri, "GEN_DB_NAME": unique_db_name,
           "GEN_DB_COLLECTION": "orders"}
    result = cli(["generate", "--source", VOLVO, "--total", "3000", "--batch-size", "250",
                  "--workers", "0", "--seed", "5", "--checkpoint-store",
                  f"file:{tmp_path / 'state'}", "--metrics-file", str(metrics_file),
                  "--log-format", "json"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    events = {line.get("event"): line for line in json_lines(result.stderr)}
    assert {"run_started", "run_finished", "metrics_written"} <= set(events)
    assert events["run_finished"]["written"] == 3000
    assert "3,000 documents written" in result.stdout  # the human summary went to stdout

    data = json.loads(metrics_file.read_text())
    summary = data["summary"]
    assert summary["status"] == "completed" and summary["label"] == "generate"
    assert summary["totals"]["written"] == summary["report"]["written"] == 3000
    assert summary["totals"]["already_present"] == summary["report"]["already_present"] == 0
    assert summary["totals"]["bytes_written"] == summary["report"]["bytes"]
    assert summary["totals"]["batches"] == 12 == summary["batch_latency_ms"]["count"]
    assert summary["totals"]["request_units"] == 0  # not a Cosmos DB target
    assert data["samples"] and data["samples"][-1]["written"] == 3000
    with MongoClient(mongo_uri) as client:
        assert client[unique_db_name]["orders"].count_documents({}) == 3000
        client.drop_database(unique_db_name)


def test_generate_cli_csv_metrics(mongo_uri, unique_db_name, tmp_path):
    metrics_file = tmp_path / "gen.csv"
    env = {"GEN_DB_CONNECTION_STRING": mongo_uri, "GEN_DB_NAME": unique_db_name,
           "GEN_DB_COLLECTION": "orders"}
    result = cli(["generate", "--source", VOLVO, "--total", "1500", "--batch-size", "500",
                  "--workers", "0", "--checkpoint-store", f"file:{tmp_path / 'state'}",
                  "--metrics-file", str(metrics_file), "-q"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1,500 documents written" in result.stdout  # text mode too: summaries on stdout
    rows = list(csv.DictReader(metrics_file.open()))
    assert rows[-1]["kind"] == "summary" and rows[-1]["status"] == "completed"
    assert {r["kind"] for r in rows[:-1]} == {"sample"}
    assert int(rows[-1]["written"]) == 1500 == int(rows[-2]["written"])
    assert int(rows[-1]["batches"]) == 3
    with MongoClient(mongo_uri) as client:
        client.drop_database(unique_db_name)


def test_migrate_cli_csv_metrics_match_report_and_json_logs(source_uri, target_uri,
                                                            unique_db_name, tmp_path):
    src = unique_db_name + "_src"
    load(source_uri, src, "orders", mixed_documents(4000, seed=11))
    metrics_file = tmp_path / "out" / "migrate.csv"
    result = cli(["migrate", "--batch-size", "500", "--checkpoint-store",
                  f"file:{tmp_path / 'ckpt'}", "--metrics-file", str(metrics_file),
                  "--log-format", "json"],
                 migrate_env(source_uri, target_uri, src, unique_db_name), tmp_path)
    assert result.returncode == 0, result.stderr
    events = [line.get("event") for line in json_lines(result.stderr)]
    assert events.count("run_started") == 1 and events.count("run_finished") == 1
    assert "metrics_written" in events
    written = table_value(result.stdout, "written")
    assert written == 4000

    rows = list(csv.DictReader(metrics_file.open()))
    summary = rows[-1]
    assert summary["kind"] == "summary" and summary["status"] == "completed"
    assert int(summary["written"]) == written
    assert int(summary["read"]) == table_value(result.stdout, "read")
    assert int(summary["already_present"]) == table_value(result.stdout, "already present")
    assert int(summary["rejected"]) == table_value(result.stdout, "rejected")
    # 4,000 documents in batches of 500: 8 from one cursor (natural order); each further
    # `_id`-range partition can end with one short batch.
    finished = next(e for e in json_lines(result.stderr) if e.get("event") == "run_finished")
    batches = int(summary["batches"])
    assert batches == int(summary["batches_timed"])
    assert 8 <= batches <= 8 + finished["partitions"] - 1, (batches, finished["partitions"])
    with MongoClient(source_uri) as client:
        client.drop_database(src)


async def test_migrate_python_api_json_summary_equals_report(source_uri, target_uri,
                                                             unique_db_name, tmp_path):
    src = unique_db_name + "_src"
    settings = loaded_migration(
        source_uri, target_uri, src, unique_db_name, 2_500, mig_batch_size=300)
    metrics = RunMetrics()
    path = tmp_path / "m.json"
    async with monitor_run(metrics, label="migrate", metrics_file=path,
                           interval=0.05) as collector:
        report = await commands.migrate(settings, metrics=metrics, run_dir=tmp_path)
        collector.attach_report(report.to_dict())
    summary = json.loads(path.read_text())["summary"]
    assert summary == json.loads(json.dumps(collector.get_summary(), default=str))
    for name in REPORT_TOTALS:
        assert summary["totals"][name] == summary["report"][name] == getattr(report, name), name
    assert summary["totals"]["written"] == 2500
    assert summary["duration_s"] == round(report.duration_s, 3)
    # 2,500 documents in batches of 300: 9, plus at most one short batch per extra partition
    assert summary["batch_latency_ms"]["count"] == metrics.batches
    assert 9 <= metrics.batches <= 9 + report.partitions - 1, (metrics.batches, report.partitions)
    assert summary["batch_latency_ms"]["p95"] >= summary["batch_latency_ms"]["p50"] > 0
    assert summary["resources"]["peak_rss_mb"] > 0
    with MongoClient(source_uri) as client:
        client.drop_database(src)


async def test_cosmos_kind_sides_copy_exactly_and_note_missing_statistics(
        source_uri, target_uri, unique_db_name, tmp_path, dw_caplog):
    """--source-kind/--target-kind cosmos route reads and inserts through the single-connection
    metering clients; FerretDB lacks getLastRequestStatistics, which is noticed once."""
    src = unique_db_name + "_src"
    settings = loaded_migration(source_uri, target_uri, src, unique_db_name, 3_000,
                                mig_batch_size=200, parallel_cursors=2, max_insert_workers=3)
    metrics = RunMetrics()
    report = await commands.migrate(settings, metrics=metrics, run_dir=tmp_path,
                                    source_kind="cosmos", target_kind="cosmos")
    assert report.written == 3000 and report.target_count == 3000
    assert metrics.request_units == 0
    unsupported = [r for r in dw_caplog.records if "request charges" in r.getMessage()]
    assert {r.getMessage().split(":")[0] for r in unsupported} == {"source", "target"}
    assert len(unsupported) == 2  # once per side, not once per batch
    with MongoClient(source_uri) as client:
        client.drop_database(src)


def test_cli_error_is_a_json_event(source_uri, target_uri, unique_db_name, tmp_path):
    result = cli(["migrate", "--checkpoint-store", f"file:{tmp_path / 'ckpt'}",
                  "--log-format", "json"],
                 migrate_env(source_uri, target_uri, unique_db_name + "_missing",
                             unique_db_name), tmp_path)
    assert result.returncode == 2
    lines = json_lines(result.stderr)
    errors = [line for line in lines if line.get("event") == "error"]
    assert len(errors) == 1 and errors[0]["exit_code"] == 2
    assert "does not exist" in errors[0]["message"] and errors[0]["level"] == "error"


def test_bad_metrics_file_name_fails_before_the_run(mongo_uri, unique_db_name, tmp_path):
    env = {"GEN_DB_CONNECTION_STRING": mongo_uri, "GEN_DB_NAME": unique_db_name,
           "GEN_DB_COLLECTION": "orders"}
    result = cli(["generate", "--source", VOLVO, "--total", "10", "--workers", "0",
                  "--metrics-file", str(tmp_path / "m.txt")], env, tmp_path)
    assert result.returncode == 2
    assert ".json or .csv" in result.stderr
    with MongoClient(mongo_uri) as client:
        assert unique_db_name not in client.list_database_names()


async def test_request_units_reach_the_migration_report(monkeypatch, source_uri, target_uri,
                                                        unique_db_name, tmp_path):
    """FerretDB has no getLastRequestStatistics, so each side's answer is replaced by a
    recorded Cosmos DB reply (COSMOS.md): every metered read and insert of a real run must
    add its charge, and the report must carry the totals."""
    from dataworks.monitoring.ru import RequestUnitMeter

    charges = {"source": ("find", 2.5), "target": ("insert", 7.25)}
    samples = {"source": 0, "target": 0}

    async def recorded_sample(self, database):
        command, charge = charges[self.side]
        samples[self.side] += 1
        return self.record({"_t": "GetRequestStatisticsResponse", "ok": 1,
                            "CommandName": command, "RequestCharge": charge,
                            "RequestDurationInMilliSeconds": 3.0})

    monkeypatch.setattr(RequestUnitMeter, "sample", recorded_sample)
    src = unique_db_name + "_src"
    settings = loaded_migration(
        source_uri, target_uri, src, unique_db_name, 2_000, mig_batch_size=250)
    report = await commands.migrate(settings, run_dir=tmp_path, source_kind="cosmos",
                                    target_kind="cosmos", verify="none")
    assert report.written == 2000
    assert samples["source"] > 0 and samples["target"] > 0
    expected = {"source:find": 2.5 * samples["source"],
                "target:insert": 7.25 * samples["target"]}
    assert report.request_units_by == pytest.approx(expected)
    assert report.request_units == pytest.approx(sum(expected.values()))
    assert report.to_dict()["request_units"] == report.request_units
