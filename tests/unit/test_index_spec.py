"""Index translation and comparison rules, on recorded listings (no server)."""

from __future__ import annotations

from bson import SON, Int64

from dataworks.indexes import IndexSpec, IndexStatus, diff_indexes, plan_indexes
from dataworks.indexes.spec import normalize

# What a Cosmos DB for MongoDB account lists (3.2-era system index, TTL on _ts, doubles as
# directions, bookkeeping fields), plus options Atlas accepts and FerretDB rejects.
COSMOS_LISTING = [
    {"v": 1, "key": {"_id": 1}, "name": "_id_", "ns": "shop.orders"},
    {"v": 1, "key": {"_id": 1}, "name": "DocumentDBDefaultIndex", "ns": "shop.orders"},
    {"v": 1, "key": {"_ts": 1}, "name": "_ts_1", "expireAfterSeconds": 3600.0},
    {"v": 1, "key": SON([("customer", 1.0), ("created", -1.0)]), "name": "customer_created",
     "background": True, "ns": "shop.orders"},
    {"v": 2, "key": {"email": Int64(1)}, "name": "email_1", "unique": True,
     "partialFilterExpression": {"email": {"$exists": True}}},
    {"v": 2, "key": {"code": 1}, "name": "code_1", "unique": False, "sparse": True,
     "collation": {"locale": "en", "strength": 2}, "cosmosInternal": 7},
    {"v": 2, "key": {"$**": 1}, "name": "wild", "wildcardProjection": {"secret": 0}},
]


def test_cosmos_system_and_ts_indexes_are_skipped_with_reasons():
    plan = plan_indexes(COSMOS_LISTING)
    skipped = {s.name: s.reason for s in plan.skipped}
    assert set(skipped) == {"DocumentDBDefaultIndex", "_ts_1"}
    assert "system index" in skipped["DocumentDBDefaultIndex"]
    assert "_ts" in skipped["_ts_1"] and "--ts-field" in skipped["_ts_1"]
    assert [s.name for s in plan.specs] == ["customer_created", "email_1", "code_1", "wild"]


def test_translation_keeps_defining_options_and_drops_bookkeeping():
    specs = {s.name: s for s in plan_indexes(COSMOS_LISTING).specs}
    assert specs["customer_created"].key == (("customer", 1), ("created", -1))
    assert specs["customer_created"].options == {}  # v, ns, background dropped
    assert specs["email_1"].to_document() == {
        "key": {"email": 1},
        "name": "email_1",
        "unique": True,
        "partialFilterExpression": {"email": {"$exists": True}},
    }
    assert specs["code_1"].options == {
        "sparse": True,
        "collation": {"locale": "en", "strength": 2},
    }  # unique: false is the default; the unknown option is dropped
    assert specs["wild"].options == {"wildcardProjection": {"secret": 0}}


def test_dropped_unknown_options_are_noted():
    plan = plan_indexes(COSMOS_LISTING)
    assert any("code_1" in n and "cosmosInternal" in n for n in plan.notes)


def test_ts_field_rebuilds_ttl_on_a_real_field():
    plan = plan_indexes(COSMOS_LISTING, ts_field="updatedAt")
    ttl = next(s for s in plan.specs if s.name == "updatedAt_1")
    assert ttl.key == (("updatedAt", 1),)
    assert ttl.options == {"expireAfterSeconds": 3600}
    assert isinstance(ttl.options["expireAfterSeconds"], int)
    assert [s.name for s in plan.skipped] == ["DocumentDBDefaultIndex"]


def test_spec_document_round_trip():
    spec = IndexSpec("a_b", (("a", 1), ("b", -1)), {"unique": True})
    assert IndexSpec.from_document(spec.to_document()) == spec


def _listing(*specs: IndexSpec) -> list[dict]:
    return [{"v": 2, "key": {"_id": 1}, "name": "_id_"}] + [s.to_document() for s in specs]


def test_diff_reports_missing_extra_different_and_same():
    plan = plan_indexes(COSMOS_LISTING)
    target = _listing(
        IndexSpec("customer_created", (("customer", 1), ("created", -1))),
        IndexSpec("email_1", (("email", 1),), {"unique": True}),  # partial filter lost
        IndexSpec("other", (("x", 1),)),
        IndexSpec("wild_renamed", (("$**", 1),), {"wildcardProjection": {"secret": 0}}),
    )
    comparison = diff_indexes(plan, target)
    status = {r.name: r for r in comparison.rows}
    assert status["customer_created"].status is IndexStatus.SAME
    assert status["email_1"].status is IndexStatus.DIFFERENT
    assert "partialFilterExpression" in status["email_1"].detail
    assert status["code_1"].status is IndexStatus.MISSING
    assert status["other"].status is IndexStatus.EXTRA
    assert status["wild"].status is IndexStatus.DIFFERENT
    assert "named wild_renamed" in status["wild"].detail
    assert status["_ts_1"].status is IndexStatus.SKIPPED
    assert not comparison.equal


def test_skipped_indexes_do_not_make_a_comparison_unequal():
    plan = plan_indexes(COSMOS_LISTING)
    target = _listing(*plan.specs)
    comparison = diff_indexes(plan, target)
    assert comparison.equal
    assert comparison.count(IndexStatus.SKIPPED) == 2
    assert comparison.to_dict()["equal"] is True


def test_direction_types_and_text_server_fields_do_not_count_as_differences():
    source, _ = normalize({"key": {"a": 1.0, "_fts": "text", "_ftsx": 1}, "name": "t",
                           "weights": {"title": 1}})
    target, _ = normalize({"key": {"a": Int64(1), "_fts": "text", "_ftsx": 1}, "name": "t",
                           "weights": {"title": 1}, "textIndexVersion": 3,
                           "default_language": "english", "language_override": "language"})
    assert source.same_definition(target)
    other_fields, _ = normalize({"key": {"a": 1, "_fts": "text", "_ftsx": 1}, "name": "t",
                                 "weights": {"body": 1}})
    assert not source.same_definition(other_fields)  # weights name a text index's fields
    german, _ = normalize({"key": {"a": 1, "_fts": "text", "_ftsx": 1}, "name": "t",
                           "weights": {"title": 1}, "default_language": "german"})
    assert not source.same_definition(german)
