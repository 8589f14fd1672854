"""What a migration may do to a target that already holds documents: refuse a fresh run into
it, resume its own, and tell apart "already there", "different under the same _id" and
"clashes on another unique index" (issue 13, part A)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bson import json_util
from pymongo import MongoClient

from dataworks.core.dead_letter import read_records
from tests.integration.test_migrate_resume import wait_then_kill
from tests.migration_helpers import assert_identical, load, mixed_documents, raw_by_id


def migrate_cli(source_uri: str, target_uri: str, src: str, dst: str, cwd: Path,
                *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`dataworks migrate` as a user runs it (file checkpoints in `cwd`, run folder in cwd)."""
    argv = [sys.executable, "-m", "dataworks", "migrate", "--profile", "dev",
            "--source-uri", source_uri, "--source-db", src, "--source-collection", "orders",
            "--target-uri", target_uri, "--target-db", dst, "--target-collection", "orders",
            "--checkpoint-store", f"file:{cwd / 'ckpt.json'}", *extra]
    return subprocess.run(argv, cwd=cwd, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=600, check=False)


def one_line(result: subprocess.CompletedProcess) -> str:
    return " ".join((result.stdout + result.stderr).split())


# -- a fresh run into a non-empty target ---------------------------------------------------


def test_fresh_run_into_a_non_empty_target_is_refused_and_writes_nothing(
        source_uri, target_uri, unique_db_name, tmp_path):
    src = unique_db_name + "_src"
    load(source_uri, src, "orders", [{"_id": i, "v": i} for i in range(300)])
    with MongoClient(target_uri) as client:
        client[unique_db_name]["orders"].insert_many([{"_id": f"other-{i}"} for i in range(7)])
    before = raw_by_id(target_uri, unique_db_name, "orders")

    refused = migrate_cli(source_uri, target_uri, src, unique_db_name, tmp_path)
    assert refused.returncode == 2, one_line(refused)
    assert (f"target {unique_db_name}.orders already holds 7 documents and no checkpoint of "
            "this migration") in one_line(refused)
    assert "--drop-target" in one_line(refused) and "--merge" in one_line(refused)
    assert raw_by_id(target_uri, unique_db_name, "orders") == before  # nothing written
    assert not (tmp_path / "ckpt.json").exists()

    merged = migrate_cli(source_uri, target_uri, src, unique_db_name, tmp_path, "--merge",
                         "--verify", "none")
    assert merged.returncode == 0, one_line(merged)
    assert len(raw_by_id(target_uri, unique_db_name, "orders")) == 307


def test_a_run_killed_before_its_first_progress_save_resumes_with_the_same_command(
        source_uri, target_uri, unique_db_name, tmp_path):
    """SIGKILL as soon as the first documents land (long before the 5 s progress save): the
    target is non-empty, and the same command must resume it rather than refuse it."""
    src = unique_db_name + "_src"
    docs = mixed_documents(12_000, seed=21)
    load(source_uri, src, "orders", docs)
    store = f"file:{tmp_path / 'ckpt.json'}"

    def target_has_documents() -> bool:
        with MongoClient(target_uri) as client:
            return client[unique_db_name]["orders"].estimated_document_count() > 0

    argv = [sys.executable, "-m", "dataworks", "migrate", "--profile", "dev",
            "--source-uri", source_uri, "--source-db", src, "--source-collection", "orders",
            "--target-uri", target_uri, "--target-db", unique_db_name,
            "--target-collection", "orders", "--checkpoint-store", store]
    env = {**os.environ, "FRAMEWORK_CHECKPOINT_INTERVAL": "1000000", "MIG_BATCH_SIZE": "250"}
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert wait_then_kill(proc, target_has_documents), "the run ended before it was killed"
    final = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=600, check=False)
    assert final.returncode == 0, one_line(final)
    assert assert_identical((source_uri, src, "orders"),
                            (target_uri, unique_db_name, "orders")) == len(docs)


# -- duplicate keys, classified ------------------------------------------------------------


def test_a_clash_on_a_unique_secondary_index_is_rejected_with_the_index_not_already_present(
        source_uri, target_uri, unique_db_name, tmp_path):
    src = unique_db_name + "_src"
    people = [{"_id": i, "email": f"p{i}@example.com"} for i in range(20)]
    people[13]["email"] = "p4@example.com"  # two source documents share an email
    load(source_uri, src, "orders", people)
    with MongoClient(target_uri) as client:  # an empty target with a unique index
        client[unique_db_name]["orders"].create_index("email", unique=True, name="email_1")

    result = migrate_cli(source_uri, target_uri, src, unique_db_name, tmp_path)
    text = one_line(result)
    assert result.returncode == 1, text
    assert "19 migrated, 0 already present, 0 replaced, 0 dropped, 1 rejected" in text
    assert "finished with 1 rejected" in text
    dead = tmp_path / ".dataworks" / "runs"
    [path] = list(dead.glob("*/dead_letter.jsonl"))
    assert str(path.relative_to(tmp_path)) in text.replace(str(tmp_path) + "/", "")
    [record] = read_records(path)
    assert record["_id"] in (4, 13) and record["code"] == 11000
    assert record["index"] == "email_1" and record["key"] == {"email": "p4@example.com"}
    assert "email_1" in record["reason"]
    assert len(raw_by_id(target_uri, unique_db_name, "orders")) == 19

    again = migrate_cli(source_uri, target_uri, src, unique_db_name, tmp_path)
    assert again.returncode == 1, one_line(again)
    assert "finished with 1 rejected" in one_line(again)
    assert "nothing to do" not in one_line(again)


def test_a_finished_run_with_rejections_says_so_again_on_every_rerun(
        source_uri, target_uri, unique_db_name, tmp_path):
    """With --verify none the run is done despite its rejection (no verification keeps it
    in its verify phase): the rerun's "already finished" path must still exit 1 and name
    the rejection, not say "nothing to do"."""
    src = unique_db_name + "_src"
    people = [{"_id": i, "email": f"p{i}@example.com"} for i in range(20)]
    people[13]["email"] = "p4@example.com"
    load(source_uri, src, "orders", people)
    with MongoClient(target_uri) as client:
        client[unique_db_name]["orders"].create_index("email", unique=True, name="email_1")
    first = migrate_cli(source_uri, target_uri, src, unique_db_name, tmp_path,
                        "--verify", "none")
    assert first.returncode == 1, one_line(first)
    assert json_util.loads((tmp_path / "ckpt.json").read_text())["phase"] == "done"
    for _ in range(2):
        again = migrate_cli(source_uri, target_uri, src, unique_db_name, tmp_path,
                            "--verify", "none")
        text = one_line(again)
        assert again.returncode == 1, text
        assert "already finished" in text and "finished with 1 rejected" in text
        assert "dead_letter.jsonl" in text and "nothing to do" not in text


def _different_copy_on_target(source_uri, target_uri, src, dst) -> None:
    """Source: 500 documents. Target: 300 of them changed (same `_id`), 100 identical."""
    docs = mixed_documents(500, seed=31)
    load(source_uri, src, "orders", docs)
    old = [{**d, "n": -d["n"], "stale": True} for d in docs[:300]] + docs[300:400]
    load(target_uri, dst, "orders", old)


def test_a_target_holding_different_documents_is_replaced_with_merge(
        source_uri, target_uri, unique_db_name, tmp_path):
    src = unique_db_name + "_src"
    _different_copy_on_target(source_uri, target_uri, src, unique_db_name)
    result = migrate_cli(source_uri, target_uri, src, unique_db_name, tmp_path, "--merge",
                         "--verify", "hash")
    text = one_line(result)
    assert result.returncode == 0, text
    assert "100 migrated, 100 already present, 300 replaced, 0 dropped, 0 rejected" in text
    assert assert_identical((source_uri, src, "orders"),
                            (target_uri, unique_db_name, "orders")) == 500


def test_keep_existing_keeps_different_documents_lists_them_and_exits_1(
        source_uri, target_uri, unique_db_name, tmp_path):
    src = unique_db_name + "_src"
    _different_copy_on_target(source_uri, target_uri, src, unique_db_name)
    before = raw_by_id(target_uri, unique_db_name, "orders")
    result = migrate_cli(source_uri, target_uri, src, unique_db_name, tmp_path, "--merge",
                         "--keep-existing", "--verify", "none")
    text = one_line(result)
    assert result.returncode == 1, text
    assert "100 already present, 0 replaced, 300 kept (different)" in text
    [path] = list((tmp_path / ".dataworks" / "runs").glob("*/kept_different.jsonl"))
    assert "300 target documents differ from the source and were kept" in text
    after = raw_by_id(target_uri, unique_db_name, "orders")
    assert len(after) == 500
    assert all(after[k] == v for k, v in before.items())  # the kept ones untouched
    with MongoClient(target_uri) as client:
        stale = {d["_id"] for d in client[unique_db_name]["orders"].find({"stale": True})}
    assert {r["_id"] for r in read_records(path)} == stale and len(stale) == 300

    again = migrate_cli(source_uri, target_uri, src, unique_db_name, tmp_path, "--merge",
                        "--keep-existing", "--verify", "none")
    assert again.returncode == 1, one_line(again)  # a finished run still says so
    assert "300 target documents differ from the source and were kept" in one_line(again)
    assert "nothing to do" not in one_line(again)


def test_force_from_start_after_editing_a_transform_recopies_every_document(
        source_uri, target_uri, unique_db_name, tmp_path):
    src = unique_db_name + "_src"
    load(source_uri, src, "orders", [{"_id": i, "v": i} for i in range(300)])
    strategy = tmp_path / "tag.py"
    body = ("from dataworks import BaseMigrationStrategy\n\n"
            "class Tag(BaseMigrationStrategy):\n"
            "    def transform(self, doc):\n"
            "        doc['version'] = {version}\n"
            "        return doc\n")
    strategy.write_text(body.format(version=1))
    first = migrate_cli(source_uri, target_uri, src, unique_db_name, tmp_path,
                        "--strategy", f"{strategy}:Tag")
    assert first.returncode == 0, one_line(first)
    strategy.write_text(body.format(version=2))
    again = migrate_cli(source_uri, target_uri, src, unique_db_name, tmp_path,
                        "--strategy", f"{strategy}:Tag", "--force-from-start")
    text = one_line(again)
    assert again.returncode == 0, text
    assert "0 migrated, 0 already present, 300 replaced" in text
    with MongoClient(target_uri) as client:
        versions = {d["version"] for d in client[unique_db_name]["orders"].find()}
        assert client[unique_db_name]["orders"].count_documents({}) == 300
    assert versions == {2}


def test_retry_rejected_sends_the_dead_letters_again_once_the_cause_is_fixed(
        source_uri, target_uri, unique_db_name, tmp_path):
    """Two source documents share an email under a unique index: one is rejected, every
    run says so (exit 1); the user fixes the source, --retry-rejected lands it and clears
    the dead letter; then the migration is done (exit 0)."""
    src = unique_db_name + "_src"
    people = [{"_id": i, "email": f"p{i}@example.com"} for i in range(20)]
    people[13]["email"] = "p4@example.com"
    load(source_uri, src, "orders", people)
    with MongoClient(target_uri) as client:
        client[unique_db_name]["orders"].create_index("email", unique=True, name="email_1")
    first = migrate_cli(source_uri, target_uri, src, unique_db_name, tmp_path)
    assert first.returncode == 1, one_line(first)
    [path] = list((tmp_path / ".dataworks" / "runs").glob("*/dead_letter.jsonl"))
    [record] = read_records(path)

    retry_too_early = migrate_cli(source_uri, target_uri, src, unique_db_name, tmp_path,
                                  "--retry-rejected")
    assert retry_too_early.returncode == 1, one_line(retry_too_early)
    assert "0 of 1 rejected documents are on the target now" in one_line(retry_too_early)
    assert [r["_id"] for r in read_records(path)] == [record["_id"]]

    with MongoClient(source_uri) as client:  # the user fixes the data at the source
        client[src]["orders"].update_one({"_id": record["_id"]},
                                         {"$set": {"email": "fixed@example.com"}})
    retried = migrate_cli(source_uri, target_uri, src, unique_db_name, tmp_path,
                          "--retry-rejected")
    text = one_line(retried)
    assert retried.returncode == 0, text
    assert "1 of 1 rejected documents are on the target now" in text
    assert "1 migrated" in text
    assert not path.exists()
    assert assert_identical((source_uri, src, "orders"),
                            (target_uri, unique_db_name, "orders")) == 20

    done = migrate_cli(source_uri, target_uri, src, unique_db_name, tmp_path)
    assert done.returncode == 0 and "nothing to do" in one_line(done), one_line(done)
