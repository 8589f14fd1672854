"""Indexes against the real server: several kinds copied and compared, rejections reported,
a deferred build interrupted and finished on the next run."""

from __future__ import annotations

import asyncio

import pytest
from pymongo import AsyncMongoClient, MongoClient
from typer.testing import CliRunner

from dataworks.checkpoints.store import TargetCheckpointStore
from dataworks.cli import app
from dataworks.core.clients import ReadOnlyCollection
from dataworks.indexes import (
    IndexSpec,
    IndexStatus,
    build_pending_indexes,
    compare_indexes,
    copy_indexes,
    defer_indexes,
    load_pending,
)
from dataworks.indexes.operations import IndexCopyReport, create_specs, list_target_indexes

# What FerretDB and MongoDB both build: ascending, descending, compound, unique, nested.
KINDS = [
    ([("customer", 1)], {"name": "customer_1"}),
    ([("created", -1)], {"name": "created_desc"}),
    ([("customer", 1), ("created", -1)], {"name": "customer_created"}),
    ([("email", 1)], {"name": "email_unique", "unique": True}),
    ([("region", 1), ("code", 1)], {"name": "region_code_unique", "unique": True}),
    ([("address.city", 1)], {"name": "address_city"}),
]


@pytest.fixture
async def sides(source_uri, target_uri, unique_db_name, target_db_name):
    source_client: AsyncMongoClient = AsyncMongoClient(source_uri)
    target_client: AsyncMongoClient = AsyncMongoClient(target_uri)
    source = source_client[unique_db_name]["orders"]
    docs = [
        {"_id": i, "customer": i % 50, "created": i, "email": f"u{i}@x", "region": i % 3,
         "code": i, "address": {"city": f"c{i % 7}"}}
        for i in range(1000)
    ]
    await source.insert_many(docs)
    for keys, options in KINDS:
        await source.create_index(keys, **options)
    yield ReadOnlyCollection(source), target_client[target_db_name]["orders"], docs, target_client
    await source_client.drop_database(unique_db_name)
    await target_client.drop_database(target_db_name)
    await source_client.close()
    await target_client.close()


async def test_indexes_of_several_kinds_are_copied_and_compare_equal(sides):
    source, target, docs, _ = sides
    await target.insert_many(docs)
    before = await compare_indexes(source, target)
    assert {r.name for r in before.rows if r.status is IndexStatus.MISSING} == {
        o["name"] for _, o in KINDS
    }
    report = await copy_indexes(source, target)
    assert report.ok and sorted(report.created) == sorted(o["name"] for _, o in KINDS)
    listed = {i["name"]: i for i in await list_target_indexes(target)}
    assert listed["region_code_unique"]["unique"] is True
    assert list(listed["customer_created"]["key"].items()) == [("customer", 1), ("created", -1)]
    after = await compare_indexes(source, target)
    assert after.equal and after.count(IndexStatus.SAME) == len(KINDS)
    again = await copy_indexes(source, target)
    assert again.created == [] and len(again.already_present) == len(KINDS)


async def test_compare_names_missing_extra_and_different(sides):
    source, target, _docs, _ = sides
    await copy_indexes(source, target)
    await target.drop_index("address_city")
    await target.drop_index("email_unique")
    await target.create_index([("email", 1)], name="email_unique")  # unique lost
    await target.create_index([("note", 1)], name="note_1")
    comparison = await compare_indexes(source, target)
    by_name = {r.name: r for r in comparison.rows}
    assert by_name["address_city"].status is IndexStatus.MISSING
    assert by_name["email_unique"].status is IndexStatus.DIFFERENT
    assert "unique: source True, target absent" in by_name["email_unique"].detail
    assert by_name["note_1"].status is IndexStatus.EXTRA
    assert not comparison.equal


async def test_rejected_and_conflicting_definitions_are_reported_not_raised(sides,
                                                                             test_server):
    _, target, docs, _ = sides
    await target.insert_many(docs[:10])
    await target.create_index([("customer", 1)], name="taken")
    report = IndexCopyReport()
    await create_specs(
        target,
        [
            IndexSpec("bad_kind", (("customer", "no-such-index-type"),)),
            IndexSpec("not_unique", (("region", 1),), {"unique": True}),  # region repeats
            IndexSpec("taken", (("created", 1),)),
            IndexSpec("good", (("created", 1),)),
        ],
        report,
    )
    # mongo-java-server builds an index of any unknown type; FerretDB and MongoDB refuse it.
    refused = {"not_unique"} | ({"bad_kind"} if test_server.name != "mongojava" else set())
    assert set(report.failed) == refused | {"taken"}
    assert all("code" in report.failed[name] for name in refused)
    assert "another definition" in report.failed["taken"]
    assert report.created == [n for n in ("bad_kind", "good") if n not in refused]


class Interrupted(Exception):
    """Stands in for a killed process: raised right after the first index is built."""


async def test_deferred_build_is_interrupted_then_finished_on_the_next_run(sides):
    source, target, docs, target_client = sides
    store = TargetCheckpointStore(target_client)
    await target.create_index([("legacy", 1)], name="legacy_1")  # on the empty target

    deferred = await defer_indexes(source, target, store)
    assert deferred.dropped == ["legacy_1"]
    names = {s.name for s in deferred.pending}
    assert names == {o["name"] for _, o in KINDS} | {"legacy_1"}
    assert [i["name"] for i in await list_target_indexes(target)] == ["_id_"]

    await target.insert_many(docs)  # the load runs without secondary indexes

    def stop_after_first(spec: IndexSpec) -> None:
        raise Interrupted(spec.name)

    with pytest.raises(Interrupted):
        await build_pending_indexes(target, store, on_built=stop_after_first)
    left = {s.name for s in await load_pending(target, store)}
    assert len(left) == len(names) - 1  # the first one is built and off the record

    # the next run: defer again (target not empty, nothing dropped), then build the rest
    again = await defer_indexes(source, target, store)
    assert again.dropped == [] and {s.name for s in again.pending} == names
    report = await build_pending_indexes(target, store)
    assert report.ok
    assert len(report.created) + len(report.already_present) == len(names)
    assert await load_pending(target, store) == []
    built = {i["name"] for i in await list_target_indexes(target)}
    assert built == names | {"_id_"}
    assert (await compare_indexes(source, target)).rows  # comparison still runs
    extra = [r.name for r in (await compare_indexes(source, target)).rows
             if r.status is IndexStatus.EXTRA]
    assert extra == ["legacy_1"]  # the target's own index came back


async def test_deferred_build_survives_cancellation(sides):
    source, target, docs, target_client = sides
    store = TargetCheckpointStore(target_client)
    await defer_indexes(source, target, store)
    await target.insert_many(docs)
    started = asyncio.Event()

    async def pause(spec: IndexSpec) -> None:
        started.set()
        await asyncio.sleep(30)

    task = asyncio.create_task(build_pending_indexes(target, store, on_built=pause))
    await asyncio.wait_for(started.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(await load_pending(target, store)) == len(KINDS) - 1
    await build_pending_indexes(target, store)
    assert await load_pending(target, store) == []
    assert (await compare_indexes(source, target)).equal


def test_indexes_cli_compare_and_copy_exit_codes(source_uri, target_uri, unique_db_name,
                                                 target_db_name):
    with MongoClient(source_uri) as s, MongoClient(target_uri) as t:
        s[unique_db_name]["c"].insert_many([{"_id": i, "a": i} for i in range(10)])
        s[unique_db_name]["c"].create_index([("a", -1)], name="a_desc", unique=True)
        args = ["--source-uri", source_uri, "--source-db", unique_db_name,
                "--source-collection", "c", "--target-uri", target_uri,
                "--target-db", target_db_name, "--target-collection", "c"]
        runner = CliRunner()
        try:
            first = runner.invoke(app, ["indexes", "compare", *args])
            assert first.exit_code == 1, first.output
            assert "missing" in first.output and "a_desc" in first.output
            copied = runner.invoke(app, ["indexes", "copy", *args])
            assert copied.exit_code == 0, copied.output
            assert "created" in copied.output
            second = runner.invoke(app, ["indexes", "compare", "--json", *args])
            assert second.exit_code == 0, second.output
            assert '"equal": true' in second.output
            missing = runner.invoke(app, ["indexes", "compare", *args[:5], "nope", *args[6:]])
            assert missing.exit_code == 2
        finally:
            s.drop_database(unique_db_name)
            t.drop_database(target_db_name)
