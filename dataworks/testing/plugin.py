"""pytest plugin (entry point `pytest11: dataworks`): real-server fixtures for DataWorks and
for people who test their own strategies and generators.

- The test server: `DATAWORKS_TEST_SERVER=ferretdb` (default; FerretDB v1 on SQLite) or
  `mongojava` (mongo-java-server in memory, with an oplog); each is built on first use.
  `DATAWORKS_TEST_MONGO_URI` instead points every fixture at one running server.
- `source_uri` / `target_uri`: two servers for migrations (two instances of the chosen kind;
  both the external one when `DATAWORKS_TEST_MONGO_URI` is set: tests then use distinct
  database names).
- `mongo_uri`: one server (the source); `mongo_client`: an `AsyncMongoClient` on it.
- `test_server`: which kind runs and what it can do (`test_server.can("sample")`).
- `@pytest.mark.needs("change_streams", ...)`: the test runs only where the server has every
  named capability (see `CAPABILITIES`), and is skipped, with the reason, elsewhere.
- `unique_db_name`: a fresh database name per test; afterwards the databases whose names
  start with it are dropped on the session's servers (mongo-java-server keeps them in memory).
  `target_db_name`: the same with `_t`, for the target side.
- `run_strategy`: the `dataworks.testing.run_strategy` helper as a fixture.
- `cosmos_source`: a `dataworks.testing.cosmos.CosmosStandIn` (Cosmos DB stand-in) in front
  of the `source_uri` server, fresh per test: unlimited budget, counters at zero, login as
  account `acct` with key `COSMOS_TEST_KEY` (its `uri`/`portal_uri()` carry both).

No test may skip on every server: a `needs` capability that no server kind offers is a
collection error, and with `DATAWORKS_TEST_SKIP_LOG=FILE` each skipped test's id is appended
to FILE so CI (`scripts/test`) can fail on a test skipped on both servers.

The contract classes (`dataworks.testing.StrategyContract`, `GeneratorContract`) get pytest's
assert rewriting from here.

A server that cannot be had fails the test with the reason; it never skips.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

EXTERNAL_URI_ENV = "DATAWORKS_TEST_MONGO_URI"
# A made-up account key shaped like Cosmos's (base64: "+", "/" and "=" need URI escaping).
COSMOS_TEST_KEY = "c3RhbmQtaW4+a2V5/Zm9yLXRlc3Rz=="
SERVER_ENV = "DATAWORKS_TEST_SERVER"
EXTERNAL_CAPABILITIES_ENV = "DATAWORKS_TEST_CAPABILITIES"
SKIP_LOG_ENV = "DATAWORKS_TEST_SKIP_LOG"

# What each server kind can do, for `@pytest.mark.needs(...)`. Measured here; see the README's
# "Test servers" section and shared facts on each server.
CAPABILITIES: dict[str, frozenset[str]] = {
    # FerretDB v1.24.2 / SQLite: any user and password with authMechanism=PLAIN.
    "ferretdb": frozenset({"authenticate"}),
    # mongo-java-server 1.47.0: seeks _id ranges, keeps Decimal128, $sample (biased), change
    # streams (on the source server: its oplog is on); no authentication at all.
    "mongojava": frozenset({"seek_id_ranges", "change_streams", "sample", "decimal128"}),
}
ALL_CAPABILITIES = frozenset().union(*CAPABILITIES.values())
# A real MongoDB or Atlas behind DATAWORKS_TEST_MONGO_URI (override with a comma list).
EXTERNAL_DEFAULT = frozenset({"seek_id_ranges", "change_streams", "sample", "decimal128"})

pytest.register_assert_rewrite("dataworks.testing.contract", "dataworks.testing.run")

_SESSION_URIS: list[str] = []  # servers this session started, for cleaning up


@dataclass(frozen=True)
class TestServer:
    """The kind of server the session runs against and its capabilities."""

    __test__ = False  # not a test class, despite the name
    name: str
    capabilities: frozenset[str]

    def can(self, capability: str) -> bool:
        if capability not in ALL_CAPABILITIES:
            raise ValueError(
                f"unknown capability {capability!r}: one of {sorted(ALL_CAPABILITIES)}")
        return capability in self.capabilities


def current_server() -> TestServer:
    if os.environ.get(EXTERNAL_URI_ENV):
        listed = os.environ.get(EXTERNAL_CAPABILITIES_ENV)
        caps = (frozenset(c.strip() for c in listed.split(",") if c.strip())
                if listed is not None else EXTERNAL_DEFAULT)
        return TestServer("external", caps)
    name = os.environ.get(SERVER_ENV, "ferretdb") or "ferretdb"
    if name not in CAPABILITIES:
        raise pytest.UsageError(f"{SERVER_ENV}={name!r}: use one of {sorted(CAPABILITIES)}")
    return TestServer(name, CAPABILITIES[name])


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "needs(*capabilities): run only on a test server with these capabilities "
        f"({', '.join(sorted(ALL_CAPABILITIES))})")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for mark in item.iter_markers("needs"):
            unknown = set(mark.args) - ALL_CAPABILITIES
            if unknown:
                raise pytest.UsageError(f"{item.nodeid}: unknown capability {sorted(unknown)}")
            if not any(set(mark.args) <= caps for caps in CAPABILITIES.values()):
                raise pytest.UsageError(
                    f"{item.nodeid}: no test server has all of {sorted(mark.args)}, so it "
                    "would skip everywhere")


def pytest_runtest_setup(item: pytest.Item) -> None:
    server = current_server()
    for mark in item.iter_markers("needs"):
        missing = sorted(set(mark.args) - server.capabilities)
        if missing:
            pytest.skip(f"the {server.name} test server lacks {', '.join(missing)}")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    log = os.environ.get(SKIP_LOG_ENV)
    if log and report.skipped and not hasattr(report, "wasxfail"):
        with open(log, "a", encoding="utf-8") as out:
            out.write(report.nodeid + "\n")


def _start_server(tmp_path_factory: pytest.TempPathFactory, label: str) -> Any:
    kind = current_server().name
    try:
        if kind == "mongojava":
            from dataworks.testing.mongojava import MongoJavaServer

            # Only the source keeps an oplog (change streams): it makes inserts dearer.
            return MongoJavaServer(Path(tmp_path_factory.mktemp(f"mongojava-{label}")),
                                   oplog=label == "source").start()
        from dataworks.testing.ferretdb import FerretDBServer

        return FerretDBServer(Path(tmp_path_factory.mktemp(f"ferretdb-{label}"))).start()
    except Exception as exc:  # noqa: BLE001 - turned into a loud failure
        pytest.fail(
            f"no MongoDB-API test server: could not start {kind} ({exc}). "
            f"Run scripts/setup, or set {EXTERNAL_URI_ENV}.",
            pytrace=False,
        )


def _server_uri(tmp_path_factory: pytest.TempPathFactory, label: str) -> Iterator[str]:
    external = os.environ.get(EXTERNAL_URI_ENV)
    if external:
        yield external
        return
    server = _start_server(tmp_path_factory, label)
    _SESSION_URIS.append(server.uri)
    yield server.uri
    _SESSION_URIS.remove(server.uri)
    server.stop()


@pytest.fixture(scope="session")
def test_server() -> TestServer:
    return current_server()


@pytest.fixture(scope="session")
def source_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _server_uri(tmp_path_factory, "source")


@pytest.fixture(scope="session")
def target_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _server_uri(tmp_path_factory, "target")


@pytest.fixture(scope="session")
def mongo_uri(source_uri: str) -> str:
    return source_uri


@pytest.fixture
def unique_db_name() -> Iterator[str]:
    name = f"dwtest_{uuid.uuid4().hex[:12]}"
    yield name
    _drop_databases(name)


@pytest.fixture
def target_db_name(unique_db_name: str) -> str:
    """The target's database name: differs from the source's even when both sides are one
    server (`DATAWORKS_TEST_MONGO_URI`)."""
    return f"{unique_db_name}_t"


def _drop_databases(prefix: str) -> None:
    """Drop `prefix*` databases on the servers this session started (not an external one)."""
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    for uri in list(_SESSION_URIS):
        try:
            with MongoClient(uri, serverSelectionTimeoutMS=5_000) as client:
                for name in client.list_database_names():
                    if name.startswith(prefix):
                        client.drop_database(name)
        except PyMongoError:
            pass  # best effort: a server a test broke is that test's failure, not this one's


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
