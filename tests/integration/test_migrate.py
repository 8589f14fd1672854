"""Migration against real servers: byte-exact copies, strategies, resume, errors."""

from __future__ import annotations

import textwrap

import pytest

from dataworks import commands
from dataworks.config import load_settings
from dataworks.errors import PluginError, UserError
from tests.migration_helpers import assert_identical, load, mixed_documents


def settings_for(source_uri, target_uri, src_db, dst_db, coll="orders", **extra):
    return load_settings(
        profile="dev",
        overrides={
            "mig_source_db_connection_string": source_uri,
            "mig_source_db_name": src_db,
            "mig_source_db_collection": coll,
            "mig_target_db_connection_string": target_uri,
            "mig_target_db_name": dst_db,
            "mig_target_db_collection": coll,
            **extra,
        },
    )


@pytest.fixture(scope="module")
def big_source(source_uri):
    db = "dw_migrate_big"
    load(source_uri, db, "orders", mixed_documents(200_000))
    return db


async def test_200k_mixed_documents_copy_byte_for_byte(big_source, source_uri, target_uri,
                                                        unique_db_name, tmp_path):
    settings = settings_for(source_uri, target_uri, big_source, unique_db_name,
                            mig_batch_size=2000, max_insert_workers=4)
    report = await commands.migrate(settings, run_dir=tmp_path, verify="none")  # compared below
    assert report.status == "completed"
    assert report.written == 200_000 and report.already_present == 0
    assert report.target_count == report.source_count == 200_000
    copied = assert_identical((source_uri, big_source, "orders"),
                              (target_uri, unique_db_name, "orders"))
    assert copied == 200_000

    again = await commands.migrate(settings, run_dir=tmp_path)
    assert again.status == "nothing to do"


async def test_range_partitions_cover_every_type_exactly(source_uri, target_uri, unique_db_name,
                                                         tmp_path):
    """Forced `_id` ranges (as on MongoDB/Cosmos DB) over mixed types lose and double nothing."""
    src = unique_db_name + "_src"
    docs = mixed_documents(6_000, seed=3) + [{"_id": True}, {"_id": None}, {"_id": 2.5}]
    load(source_uri, src, "orders", docs)
    strategy = tmp_path / "ranges.py"
    strategy.write_text(textwrap.dedent("""
        from dataworks import BaseMigrationStrategy

        class Ranges(BaseMigrationStrategy):
            async def partitions(self, planner):
                return await planner.plan_ranges(5)
    """))
    settings = settings_for(source_uri, target_uri, src, unique_db_name, mig_batch_size=500)
    report = await commands.migrate(settings, strategy=str(strategy), run_dir=tmp_path)
    assert report.partitions >= 4  # several ranges per type group, plus the catch-all
    assert report.written == len(docs)
    assert assert_identical((source_uri, src, "orders"),
                            (target_uri, unique_db_name, "orders")) == len(docs)


async def test_transforming_strategy_drops_splits_and_reshapes(source_uri, target_uri,
                                                               unique_db_name, tmp_path):
    src = unique_db_name + "_src"
    load(source_uri, src, "orders", [{"_id": i, "v": i} for i in range(1000)])
    strategy = tmp_path / "shape.py"
    strategy.write_text(textwrap.dedent("""
        from dataworks import BaseMigrationStrategy

        class Shape(BaseMigrationStrategy):
            async def transform(self, doc):
                if doc["v"] % 10 == 0:
                    return None                                   # drop
                if doc["v"] % 10 == 1:                            # split in two
                    return [{"_id": doc["_id"], "part": 1}, {"_id": -doc["_id"], "part": 2}]
                return {"_id": doc["_id"], "value": doc["v"] * 2}  # rename
    """))
    settings = settings_for(source_uri, target_uri, src, unique_db_name)
    report = await commands.migrate(settings, strategy=f"{strategy}:Shape", run_dir=tmp_path)
    assert report.dropped == 100
    assert report.written == 900 + 100
    from pymongo import AsyncMongoClient

    client = AsyncMongoClient(target_uri)
    coll = client[unique_db_name]["orders"]
    assert await coll.count_documents({}) == 1000
    assert (await coll.find_one({"_id": 5}))["value"] == 10
    assert (await coll.find_one({"_id": -11}))["part"] == 2
    await client.close()


async def test_missing_source_collection_is_a_user_error(source_uri, target_uri, unique_db_name,
                                                         tmp_path):
    settings = settings_for(source_uri, target_uri, unique_db_name, unique_db_name + "_t",
                            coll="does_not_exist")
    with pytest.raises(UserError, match="does not exist"):
        await commands.migrate(settings, run_dir=tmp_path)


async def test_same_namespace_is_refused(source_uri, unique_db_name, tmp_path):
    settings = settings_for(source_uri, source_uri, unique_db_name, unique_db_name)
    with pytest.raises(UserError, match="same collection"):
        await commands.migrate(settings, run_dir=tmp_path)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "strategy file does not exist"),
        ("def broken(:\n    pass\n", r"bad\.py:1: syntax error"),
        ("x = 1\n", "no subclass of dataworks.BaseMigrationStrategy"),
        (
            "from dataworks import BaseMigrationStrategy\n"
            "class A(BaseMigrationStrategy): pass\nclass B(BaseMigrationStrategy): pass\n",
            r"several subclasses of BaseMigrationStrategy \(A, B\)",
        ),
        (
            "from dataworks import BaseMigrationStrategy\n"
            "class A(BaseMigrationStrategy):\n    def transform(self, doc, extra):\n        return doc\n",
            r"bad\.py:3: A\.transform.* does not match",
        ),
        (
            "from dataworks import BaseMigrationStrategy\n"
            "class A(BaseMigrationStrategy):\n    def on_start(self):\n        pass\n",
            r"bad\.py:3: A\.on_start must be declared `async def`",
        ),
        ("import not_a_module_xyz\n", r"bad\.py:1: ModuleNotFoundError"),
    ],
)
async def test_strategy_loading_errors_are_explained(content, expected, source_uri, target_uri,
                                                     unique_db_name, tmp_path):
    path = tmp_path / "bad.py"
    if content is not None:
        path.write_text(content)
    settings = settings_for(source_uri, target_uri, unique_db_name, unique_db_name + "_t")
    with pytest.raises(PluginError, match=expected):
        await commands.migrate(settings, strategy=str(path), run_dir=tmp_path)


async def test_indexes_deferred_and_copied_then_hash_verified(source_uri, target_uri,
                                                              unique_db_name, tmp_path):
    from pymongo import MongoClient

    src = unique_db_name + "_src"
    load(source_uri, src, "orders", [{"_id": i, "sku": f"s{i}", "qty": i % 5} for i in range(3000)])
    with MongoClient(source_uri) as client:
        client[src]["orders"].create_index("sku", unique=True)
        client[src]["orders"].create_index([("qty", 1), ("sku", -1)])
    with MongoClient(target_uri) as client:  # an empty target that already has an index
        client[unique_db_name].create_collection("orders")
        client[unique_db_name]["orders"].create_index("qty", name="target_qty")
    settings = settings_for(source_uri, target_uri, src, unique_db_name)
    report = await commands.migrate(settings, run_dir=tmp_path, verify="hash",
                                    create_indexes=True, disable_indexes=True)
    assert any("target_qty" in w for w in report.warnings)  # dropped before the load
    assert report.verified_equal is True
    assert report.verification["compared"] == 3000
    with MongoClient(target_uri) as client:
        names = set(client[unique_db_name]["orders"].index_information())
    assert {"target_qty", "sku_1", "qty_1_sku_-1"} <= names


def test_cli_exits_1_when_verification_finds_a_difference(source_uri, target_uri,
                                                          unique_db_name, tmp_path):
    import subprocess
    import sys

    from pymongo import MongoClient

    src = unique_db_name + "_src"
    load(source_uri, src, "orders", [{"_id": i} for i in range(500)])
    with MongoClient(target_uri) as client:
        client[unique_db_name]["orders"].insert_one({"_id": "stray"})
    result = subprocess.run(
        [sys.executable, "-m", "dataworks", "migrate", "--source-uri", source_uri,
         "--source-db", src, "--source-collection", "orders", "--target-uri", target_uri,
         "--target-db", unique_db_name, "--target-collection", "orders", "--verify", "hash",
         "--merge", "--checkpoint-store", f"file:{tmp_path / 'c.json'}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    assert result.returncode == 1, result.stderr
    assert "DIFFERENT" in result.stdout and "extra 1" in result.stdout
    assert "verification (hash) found differences" in result.stderr


async def test_unacknowledged_mode_warns_and_verifies_every_document(source_uri, target_uri,
                                                                     unique_db_name, tmp_path):
    src = unique_db_name + "_src"
    load(source_uri, src, "orders", mixed_documents(3000, seed=5))
    settings = settings_for(source_uri, target_uri, src, unique_db_name)
    report = await commands.migrate(settings, run_dir=tmp_path, unacknowledged=True,
                                    verify="none")
    assert any("cannot prove delivery" in w for w in report.warnings)
    assert report.verification["mode"] == "hash"  # forced, although --verify none was asked
    # The verification tells the truth about what landed. (FerretDB answers w=0 writes it
    # should not answer, so on it some may be lost: the check must see exactly those.)
    from pymongo import MongoClient

    with MongoClient(target_uri) as client:
        landed = client[unique_db_name]["orders"].count_documents({})
    assert report.verification["target_count"] == landed
    assert report.verification["missing_count"] == 3000 - landed
    assert report.verified_equal is (landed == 3000)


def test_resuming_with_an_edited_strategy_says_so(source_uri, target_uri, unique_db_name,
                                                   tmp_path):
    """Fix a transform that failed part-way and run again: the run resumes, and warns that
    the documents copied before went through the earlier version of the file."""
    import subprocess
    import sys

    src = unique_db_name + "_src"
    load(source_uri, src, "orders", [{"_id": i, "v": i} for i in range(3_000)])
    strategy = tmp_path / "fragile.py"
    body = """
        from dataworks import BaseMigrationStrategy

        class Fragile(BaseMigrationStrategy):
            def transform(self, doc):
                if doc["v"] == 2_500:
                    {fail}
                doc["checked"] = True
                return doc
    """
    strategy.write_text(textwrap.dedent(body.format(fail='raise ValueError("bad v")')))
    argv = [sys.executable, "-m", "dataworks", "migrate", "--profile", "dev",
            "--source-uri", source_uri, "--source-db", src, "--source-collection", "orders",
            "--target-uri", target_uri, "--target-db", unique_db_name,
            "--target-collection", "orders", "--strategy", f"{strategy}:Fragile",
            "--checkpoint-store", f"file:{tmp_path / 'ckpt.json'}", "--verify", "none"]
    env = {**__import__("os").environ, "MIG_BATCH_SIZE": "100"}
    first = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=300, check=False)
    assert first.returncode == 2 and "bad v" in first.stderr, first.stderr

    strategy.write_text(textwrap.dedent(body.format(fail="doc['fixed'] = True")))
    second = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300, check=False)
    output = second.stdout + second.stderr
    assert second.returncode == 0, output
    assert "strategy file changed since this run started" in " ".join(output.split())

    from pymongo import MongoClient

    with MongoClient(target_uri) as client:
        orders = client[unique_db_name]["orders"]
        assert orders.count_documents({}) == 3_000
        assert orders.find_one({"_id": 2_500})["fixed"] is True
