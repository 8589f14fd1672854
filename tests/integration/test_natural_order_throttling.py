"""A throttled Cosmos DB source read in natural order (the stand-in in front of FerretDB,
which cannot seek by `_id` range): a 16500 on getMore must not send the reader back to the
start of the collection. Before the fix, PyMongo closed the cursor on the error, the reader
reopened it and passed over everything already read, the pass-over met the next throttled
getMore, and the run never ended."""

from __future__ import annotations

import json
import subprocess

import pytest

from dataworks.testing.cosmos import CosmosStandIn
from dataworks.testing.ferretdb import FerretDBServer
from tests.integration.test_metrics import cli, migrate_env
from tests.migration_helpers import load, raw_by_id

PAD = "p" * 1000
DOCS = 3_000


@pytest.fixture(scope="module")
def ferret_uri(tmp_path_factory):
    """FerretDB whatever DATAWORKS_TEST_SERVER says: only a server that cannot seek by `_id`
    range is read in natural order."""
    server = FerretDBServer(tmp_path_factory.mktemp("ferret-natural")).start()
    yield server.uri
    server.stop()


def test_throttled_getmores_in_natural_order_end_exact_in_bounded_time(ferret_uri,
                                                                        unique_db_name,
                                                                        tmp_path):
    load(ferret_uri, unique_db_name, "orders", [{"_id": i, "pad": PAD} for i in range(DOCS)])
    metrics_file = tmp_path / "metrics.json"
    with CosmosStandIn.in_front_of(ferret_uri) as standin:
        standin.throttle_getmores(every=3)  # every third getMore: 16500, RetryAfterMs
        env = migrate_env(standin.portal_uri(), ferret_uri, unique_db_name,
                          unique_db_name + "_t")
        try:
            result = cli(["migrate", "--batch-size", "100", "--verify", "count",
                          "--checkpoint-store", f"file:{tmp_path / 'ckpt'}",
                          "--metrics-file", str(metrics_file)], env, tmp_path, timeout=180)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the run did not end in 180 s; the stand-in saw {standin.counters}")
        counters = standin.counters
    assert result.returncode == 0, result.stderr[-3000:]
    assert "natural order" in result.stderr  # the case this test is about
    report = json.loads(metrics_file.read_text())["summary"]["report"]
    assert counters.throttled_by_command.get("getMore", 0) >= 5, counters
    assert report["source_throttled"] == counters.throttled
    assert report["read"] == report["written"] == DOCS
    assert raw_by_id(ferret_uri, unique_db_name + "_t", "orders") == \
        raw_by_id(ferret_uri, unique_db_name, "orders")
    # read once: ~1 RU per KB returned, 3,000 documents of ~1 KB; passing over a prefix
    # again after each throttle would bill it again
    reads = counters.charged_by_command.get("find", 0) + counters.charged_by_command["getMore"]
    print(f"throttled getMores {counters.throttled}, read RU {reads:,.0f}, "
          f"retries {report['retries']}")
    assert reads < 1.3 * DOCS, counters.charged_by_command
