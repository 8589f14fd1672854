"""pytest plugin (entry point `pytest11: dataworks`): real-server fixtures for DataWorks and
for people who test their own strategies and generators.

- `mongo_uri`: one running MongoDB-API server for the session: `DATAWORKS_TEST_MONGO_URI`
  when set, else a FerretDB started on a free loopback port (built on first use).
- `source_uri` / `target_uri`: two servers for migrations (both the external one when
  `DATAWORKS_TEST_MONGO_URI` is set; tests then use distinct database names).
- `mongo_client`: an `AsyncMongoClient` on `mongo_uri`.
- `unique_db_name`: a fresh database name per test.
- `run_strategy`: the `dataworks.testing.run_strategy` helper as a fixture.
- `cosmos_source`: a `dataworks.testing.cosmos.CosmosStandIn` (Cosmos DB stand-in) in front
  of the `source_uri` server, fresh per test: unlimited budget, counters at zero, login as
  account `acct` with key `COSMOS_TEST_KEY` (its `uri`/`portal_uri()` carry both).

The contract classes (`dataworks.testing.StrategyContract`, `GeneratorContract`) get pytest's
assert rewriting from here.

A server that cannot be had fails the test with the reason; it never skips.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from dataworks.testing.ferretdb import FerretDBServer

EXTERNAL_URI_ENV = "DATAWORKS_TEST_MONGO_URI"
# A made-up account key shaped like Cosmos's (base64: "+", "/" and "=" need URI escaping).
COSMOS_TEST_KEY = "c3RhbmQtaW4+a2V5/Zm9yLXRlc3Rz=="

pytest.register_assert_rewrite("dataworks.testing.contract", "dataworks.testing.run")


def _start_server(tmp_path_factory: pytest.TempPathFactory, label: str) -> FerretDBServer:
    try:
        return FerretDBServer(Path(tmp_path_factory.mktemp(label))).start()
    except Exception as exc:  # noqa: BLE001 - turned into a loud failure
        pytest.fail(
            f"no MongoDB-API test server: could not start FerretDB ({exc}). "
            f"Run scripts/dev-server build, or set {EXTERNAL_URI_ENV}.",
            pytrace=False,
        )


def _server_uri(tmp_path_factory: pytest.TempPathFactory, label: str) -> Iterator[str]:
    external = os.environ.get(EXTERNAL_URI_ENV)
    if external:
        yield external
        return
    server = _start_server(tmp_path_factory, label)
    yield server.uri
    server.stop()


@pytest.fixture(scope="session")
def source_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _server_uri(tmp_path_factory, "ferretdb-source")


@pytest.fixture(scope="session")
def target_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _server_uri(tmp_path_factory, "ferretdb-target")


@pytest.fixture(scope="session")
def mongo_uri(source_uri: str) -> str:
    return source_uri


@pytest.fixture
def unique_db_name() -> str:
    return f"dwtest_{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def mongo_client(mongo_uri: str) -> AsyncIterator[object]:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        mongo_uri, serverSelectionTimeoutMS=10_000
    )
    yield client
    await client.close()


@pytest.fixture
def run_strategy() -> object:
    """`run_strategy(strategy, docs) -> list`: what the engine would write for `docs`."""
    from dataworks.testing.run import run_strategy as helper

    return helper


@pytest.fixture
def cosmos_source(source_uri: str) -> Iterator[object]:
    """The source server seen through a Cosmos DB stand-in (`.uri`, `.portal_uri()`)."""
    from dataworks.testing.cosmos import CosmosStandIn

    with CosmosStandIn.in_front_of(source_uri, account="acct", key=COSMOS_TEST_KEY) as standin:
        yield standin
