"""The plugin contract, run on every strategy and generator in `user_defined/`, and the
test kit itself (`run_strategy`, and contracts that fail when a rule is broken)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId

from dataworks.monitoring.metrics import RunMetrics
from dataworks.testing import (
    GeneratorContract,
    StrategyContract,
    arun_strategy,
    run_strategy,
    sample_from_generator,
)

ROOT = Path(__file__).resolve().parents[2] / "user_defined"
STRATEGIES = sorted((ROOT / "strategies").glob("*.py"))
GENERATORS = sorted((ROOT / "generators").glob("*.py")) + sorted(
    (ROOT / "templates").glob("*.json"))
VOLVO = str(ROOT / "generators" / "volvo_generator.py")
VOLVO_ORDERS = sample_from_generator(VOLVO, count=40, seed=3)

# One contract class per file, named after it, so a new file is covered without editing here.
for _path in STRATEGIES:
    globals()[f"TestStrategy_{_path.stem}"] = type(
        f"TestStrategy_{_path.stem}", (StrategyContract,),
        {"strategy": str(_path), "sample_documents": VOLVO_ORDERS},
    )
for _path in GENERATORS:
    globals()[f"TestGenerator_{_path.stem}"] = type(
        f"TestGenerator_{_path.stem}", (GeneratorContract,), {"generator": str(_path)},
    )


def test_the_examples_the_guide_promises_exist() -> None:
    assert {p.name for p in STRATEGIES} >= {"volvo_strategy.py", "open_orders_strategy.py",
                                             "order_lines_strategy.py"}
    assert len(GENERATORS) >= 2


# -- the example strategies do what their docstrings say ---------------------------------


def test_open_orders_drops_orders_whose_totals_do_not_add_up() -> None:
    order = VOLVO_ORDERS[0]
    broken = {**order, "_id": "broken", "totals": {**order["totals"],
                                                   "total": order["totals"]["total"] + 5}}
    metrics = RunMetrics()
    out = run_strategy(ROOT / "strategies" / "open_orders_strategy.py", [order, broken],
                       metrics=metrics)
    assert [d["_id"] for d in out] == [order["_id"]]
    assert (metrics.transformed, metrics.dropped) == (1, 1)


def test_order_lines_splits_into_header_and_lines_with_snake_case_names() -> None:
    order = VOLVO_ORDERS[0]
    out = run_strategy(ROOT / "strategies" / "order_lines_strategy.py", [order])
    header, *lines = out
    assert header["_id"] == order["_id"] and header["kind"] == "order"
    assert header["order_number"] == order["orderNumber"]
    assert header["vehicle"]["registration_number"] == order["vehicle"]["registrationNumber"]
    assert header["job_count"] == len(order["jobs"]) == len(lines) > 0
    assert [line["_id"] for line in lines] == [{"order": order["_id"], "line": n}
                                               for n in range(1, len(lines) + 1)]
    assert lines[0]["labour_hours"] == order["jobs"][0]["labourHours"]
    assert "labourHours" not in lines[0]


# -- run_strategy has the engine's semantics ---------------------------------------------------

SHAPES = textwrap.dedent("""
    from dataworks import BaseMigrationStrategy

    class Shapes(BaseMigrationStrategy):
        async def transform(self, doc):
            if doc["n"] == 0:
                return None
            if doc["n"] == 1:
                return ({"_id": doc["_id"], "part": 1}, {"_id": [doc["_id"], 2], "part": 2})
            doc["seen_as"] = type(doc["tags"]).__name__
            return doc
""")


def test_run_strategy_drops_splits_and_reshapes_like_the_engine(tmp_path: Path) -> None:
    path = tmp_path / "shapes.py"
    path.write_text(SHAPES)
    metrics = RunMetrics()
    docs: list[dict[str, Any]] = [{"_id": i, "n": i, "tags": ("a", "b")} for i in range(3)]
    out = run_strategy(path, docs, metrics=metrics)
    assert out == [{"_id": 1, "part": 1}, {"_id": [1, 2], "part": 2},
                   {"_id": 2, "n": 2, "tags": ["a", "b"], "seen_as": "list"}]
    assert (metrics.transformed, metrics.dropped) == (2, 1)
    assert docs[2] == {"_id": 2, "n": 2, "tags": ("a", "b")}  # the caller's input is untouched


async def test_arun_strategy_works_inside_an_event_loop(tmp_path: Path) -> None:
    path = tmp_path / "shapes.py"
    path.write_text(SHAPES)
    assert await arun_strategy(path, [{"_id": 9, "n": 0, "tags": []}]) == []
    with pytest.raises(RuntimeError, match="arun_strategy"):
        run_strategy(path, [])


def test_run_strategy_fixture_is_provided_by_the_plugin(run_strategy: Any) -> None:
    assert run_strategy("user_defined/strategies/volvo_strategy.py", []) == []


# -- the contract fails when a rule is broken ---------------------------------------------------

BAD_STRATEGIES = {
    "random _id": ("import uuid\n", "return {**doc, '_id': uuid.uuid4().hex}",
                   "test_ids_are_deterministic"),
    "no _id": ("", "return {'copy': doc['n']}", "test_every_output_has_an_id"),
    "same _id twice": ("", "return {'_id': 'same', 'n': doc['n']}",
                       "test_output_ids_are_unique"),
    "wrong type": ("", "return str(doc)", "test_transform_returns_documents"),
    "not encodable": ("", "return {**doc, 'bad': object()}", "test_transform_returns_documents"),
    "depends on the batch": ("COUNTER = iter(range(10**6))\n",
                             "return {**doc, '_id': next(COUNTER)}", "test_ids_are_deterministic"),
}


@pytest.mark.parametrize("case", list(BAD_STRATEGIES), ids=list(BAD_STRATEGIES))
def test_strategy_contract_catches(case: str, tmp_path: Path) -> None:
    prelude, body, rule = BAD_STRATEGIES[case]
    path = tmp_path / "bad.py"
    path.write_text(f"{prelude}from dataworks import BaseMigrationStrategy\n"
                    f"class Bad(BaseMigrationStrategy):\n"
                    f"    def transform(self, doc):\n        {body}\n")
    contract = type("C", (StrategyContract,), {
        "strategy": str(path), "sample_documents": [{"_id": i, "n": i} for i in range(4)]})()
    with pytest.raises(AssertionError):
        getattr(contract, rule)()
    contract.test_file_passes_check()  # the file itself loads: only the rule is broken


def test_strategy_contract_asks_for_samples_when_it_transforms(tmp_path: Path) -> None:
    contract = type("C", (StrategyContract,), {
        "strategy": str(ROOT / "strategies" / "volvo_strategy.py")})()
    with pytest.raises(AssertionError, match="set `sample_documents`"):
        contract.test_samples_are_given_when_it_transforms()


BAD_GENERATORS = {
    "module-level random": ("import random\n", "return {'v': random.random()}",
                            "test_same_seed_same_documents"),
    "state between documents": ("import itertools\nC = itertools.count()\n",
                                "return {'n': next(C)}", "test_batches_do_not_depend_on_order"),
    "own random-free _id collides": ("", "return {'_id': 1}", "test_ids_are_unique"),
    "ignores the seed": ("", "return {'n': document_id}", "test_seed_changes_documents"),
}


@pytest.mark.parametrize("case", list(BAD_GENERATORS), ids=list(BAD_GENERATORS))
def test_generator_contract_catches(case: str, tmp_path: Path) -> None:
    prelude, body, rule = BAD_GENERATORS[case]
    path = tmp_path / "gen.py"
    path.write_text(f"{prelude}from dataworks import BaseDataGenerator\n"
                    f"class G(BaseDataGenerator):\n"
                    f"    def generate_document(self, document_id=None):\n        {body}\n")
    contract = type("C", (GeneratorContract,), {"generator": str(path), "batch_size": 5})()
    with pytest.raises(AssertionError):
        getattr(contract, rule)()


def test_contract_objects_in_samples_keep_their_types() -> None:
    assert isinstance(VOLVO_ORDERS[0]["_id"], ObjectId)
