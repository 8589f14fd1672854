"""Namespace selection of a database run: globs, renames, refusals (pure logic)."""

from __future__ import annotations

import pytest

from dataworks.errors import UserError
from dataworks.migrations.namespaces import (
    NamespacePair,
    Renamer,
    Selection,
    glob_regex,
    plan_namespaces,
)

EXISTING = {
    "volvo": ["service_orders", "parts", "audit_2024", "orders_archive", "system.views",
              "system.profile"],
    "sales": ["audit_log", "leads"],
    "admin": ["system.users", "x"],
    "local": ["startup_log"],
    "config": ["settings"],
    "dataworks_meta": ["checkpoints"],
}


def sources(pairs: list[NamespacePair]) -> list[str]:
    return [p.source for p in pairs]


def test_source_db_takes_every_collection_but_system_ones() -> None:
    pairs = plan_namespaces(Selection(source_dbs=("volvo",)), EXISTING)
    assert sources(pairs) == ["volvo.audit_2024", "volvo.orders_archive", "volvo.parts",
                              "volvo.service_orders"]
    assert all(p.source == p.target for p in pairs)


def test_source_db_repeatable() -> None:
    pairs = plan_namespaces(Selection(source_dbs=("volvo", "sales")), EXISTING)
    assert "sales.leads" in sources(pairs) and "volvo.parts" in sources(pairs)


def test_all_databases_leaves_out_admin_local_config_and_checkpoints() -> None:
    dbs = {p.source.split(".")[0] for p in plan_namespaces(Selection(all_databases=True),
                                                           EXISTING)}
    assert dbs == {"volvo", "sales"}


def test_include_and_exclude_globs_as_mongorestore() -> None:
    pairs = plan_namespaces(Selection(all_databases=True, include=("volvo.*", "*.audit_*"),
                                      exclude=("*_archive",)), EXISTING)
    assert sources(pairs) == ["sales.audit_log", "volvo.audit_2024", "volvo.parts",
                              "volvo.service_orders"]


def test_include_without_source_db_looks_at_every_database() -> None:
    assert sources(plan_namespaces(Selection(include=("sales.l*",)), EXISTING)) == [
        "sales.leads"]


def test_glob_star_spans_dots_and_nothing_else_is_special() -> None:
    assert glob_regex("volvo.*").match("volvo.a.b")
    assert not glob_regex("volvo.a+b").match("volvo.aab")
    assert glob_regex("volvo.a+b").match("volvo.a+b")


def test_rename_with_variables() -> None:
    pairs = plan_namespaces(Selection(source_dbs=("volvo",), exclude=("volvo.audit_*",),
                                      rename_from=("volvo.$c$",), rename_to=("atlas.$c$",)),
                            EXISTING)
    assert {p.source: p.target for p in pairs} == {
        "volvo.orders_archive": "atlas.orders_archive", "volvo.parts": "atlas.parts",
        "volvo.service_orders": "atlas.service_orders"}


def test_rename_two_variables_first_match_wins_and_target_db_for_the_rest() -> None:
    renamer = Renamer(["volvo.service_$kind$", "$db$.$coll$"],
                      ["volvo_x.so_$kind$", "z_$db$.$coll$"])
    assert renamer.target_of("volvo.service_orders") == ("volvo_x.so_orders",
                                                         "volvo.service_$kind$")
    assert renamer.target_of("sales.leads") == ("z_sales.leads", "$db$.$coll$")
    with pytest.raises(UserError, match=r"--ns-to .*\$db\$"):
        Renamer(["volvo.service_$kind$"], ["$db$_x.so_$kind$"])
    pairs = plan_namespaces(Selection(source_dbs=("sales",), target_db="crm",
                                      rename_from=("sales.leads",), rename_to=("crm.prospects",)),
                            EXISTING)
    assert {p.source: p.target for p in pairs} == {"sales.audit_log": "crm.audit_log",
                                                    "sales.leads": "crm.prospects"}


@pytest.mark.parametrize("selection, message", [
    (Selection(source_dbs=("volvo",), include=("volvo.nope*",)),
     r"--ns-include 'volvo\.nope\*' matches no collection.*volvo\.parts"),
    (Selection(source_dbs=("volvo",), exclude=("sales.*",)),
     r"--ns-exclude 'sales\.\*' matches no collection.*volvo\.service_orders"),
    (Selection(source_dbs=("nope",)), r"source database nope does not exist.*sales.*volvo"),
    (Selection(source_dbs=("volvo",), rename_from=("sales.$c$",), rename_to=("x.$c$",)),
     r"--ns-from 'sales\.\$c\$' matches none"),
    (Selection(source_dbs=("volvo",), rename_from=("volvo.*",), rename_to=("x.one",)),
     r"would all be copied to x\.one"),
    (Selection(source_dbs=("volvo", "sales"), target_db="one",
               rename_from=("volvo.audit_2024",), rename_to=("one.audit_log",)),
     r"sales\.audit_log and volvo\.audit_2024 would all be copied to one\.audit_log"),
    (Selection(source_dbs=("volvo",), exclude=("volvo.*",)), r"leave no collection"),
    (Selection(source_dbs=("volvo",), rename_from=("a.$c$",), rename_to=()), r"in pairs"),
    (Selection(source_dbs=("volvo",), rename_from=("volvo.parts",),
               rename_to=("dataworks_meta.parts",)), r"reserved database"),
])
def test_refusals(selection: Selection, message: str) -> None:
    with pytest.raises(UserError, match=message) as caught:
        plan_namespaces(selection, EXISTING)
    assert caught.value.exit_code == 2
