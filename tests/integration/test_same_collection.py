"""Source and target that may be one collection are refused (exit 2) before anything is
written or dropped, however the address is spelled.

Before this check compared host strings, source 127.0.0.1:P and target localhost:P with
--drop-target dropped the source and exited 0 with "count: EQUAL (source 0, target 0)".
"""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from dataworks.testing.proxy import FaultProxy
from tests.migration_helpers import load, mixed_documents, raw_by_id

DB, COLL = "dw_same_coll", "orders"


def migrate(cwd, source: str, target: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MIG_", "GEN_"))}
    env.update({"COLUMNS": "200", "FRAMEWORK_SERVER_SELECTION_TIMEOUT_MS": "3000"})
    return subprocess.run(
        [sys.executable, "-m", "dataworks", "migrate", "--source-uri", source, "--source-db",
         DB, "--source-collection", COLL, "--target-uri", target, "--target-db", DB,
         "--target-collection", COLL, "--checkpoint-store", "file:state", *extra],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture
def loaded_source(source_uri):
    load(source_uri, DB, COLL, mixed_documents(500, seed=3))
    return raw_by_id(source_uri, DB, COLL)


def port_of(uri: str) -> int:
    return int(urlsplit(uri).port or 27017)


@pytest.mark.parametrize("drop", [False, True], ids=["plain", "drop-target"])
@pytest.mark.parametrize("spelling", ["localhost", "127.0.0.5", "proxy"])
def test_other_spellings_of_the_source_are_refused_and_the_source_is_untouched(
        source_uri, loaded_source, tmp_path, spelling, drop):
    port = port_of(source_uri)
    proxy = None
    if spelling == "proxy":  # another address, same server: only the UUIDs can tell
        proxy = FaultProxy(upstream_port=port).start()
        target = proxy.uri
    else:
        target = f"mongodb://{spelling}:{port}/"
    try:
        result = migrate(tmp_path, f"mongodb://127.0.0.1:{port}/", target,
                         *(["--drop-target"] if drop else []))
    finally:
        if proxy is not None:
            proxy.stop()
    assert result.returncode == 2, result.stdout + result.stderr
    assert "may be the same collection" in result.stderr
    assert raw_by_id(source_uri, DB, COLL) == loaded_source
    assert not (tmp_path / "state").exists()


def test_default_port_spelled_out_is_refused_before_connecting(tmp_path):
    """`host` and `host:27017` are one server: refused from the strings alone (no server
    listens there in this test, and none is needed)."""
    for source, target in (("mongodb://127.0.0.1/", "mongodb://localhost:27017/"),
                           ("mongodb://localhost:27017", "mongodb://[::1]")):
        result = migrate(tmp_path, source, target, "--drop-target")
        assert result.returncode == 2, result.stderr
        assert "may be the same collection" in result.stderr
        assert "cannot reach" not in result.stderr


def test_a_different_collection_on_the_same_server_still_migrates(source_uri, loaded_source,
                                                                   tmp_path):
    port = port_of(source_uri)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MIG_", "GEN_"))}
    result = subprocess.run(
        [sys.executable, "-m", "dataworks", "migrate", "--source-uri",
         f"mongodb://127.0.0.1:{port}/", "--source-db", DB, "--source-collection", COLL,
         "--target-uri", f"mongodb://localhost:{port}/", "--target-db", DB + "_copy",
         "--target-collection", COLL, "--checkpoint-store", "file:state", "--drop-target"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert raw_by_id(source_uri, DB + "_copy", COLL) == loaded_source
    assert raw_by_id(source_uri, DB, COLL) == loaded_source


def test_two_accounts_with_the_same_namespace_never_share_a_run(source_uri, target_uri,
                                                                unique_db_name, tmp_path):
    """Two Cosmos DB stand-ins (two "accounts") holding the same database and collection
    names, each reached by the portal's string (`...&appName=@acct@`): two run identities,
    so the second run copies instead of saying "nothing to do" from the first's checkpoint.
    (The host part was read from after the last "@", empty for both, before the parser.)"""
    from dataworks.testing.cosmos import CosmosStandIn

    load(source_uri, DB, COLL, mixed_documents(300, seed=4))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MIG_", "GEN_"))}
    run_ids = []
    with CosmosStandIn.in_front_of(source_uri) as staging, \
            CosmosStandIn.in_front_of(source_uri) as production:
        for account, standin in (("staging", staging), ("production", production)):
            result = subprocess.run(
                [sys.executable, "-m", "dataworks", "migrate", "--source-uri",
                 standin.portal_uri(account), "--source-db", DB, "--source-collection", COLL,
                 "--target-uri", target_uri, "--target-db", unique_db_name,
                 "--target-collection", COLL, "--checkpoint-store", "file:state",
                 "--merge"],  # the second copies into the first's output
                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
                check=False)
            assert result.returncode == 0, result.stderr
            assert "nothing to do" not in result.stdout, account
            run_ids += [line for line in result.stdout.split() if line.startswith("migrate_")]
    assert len(set(run_ids)) == 2, run_ids
