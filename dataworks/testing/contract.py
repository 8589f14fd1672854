"""Contract tests for strategy and generator files: the rules the engines rely on.

Subclass one in your own test file; pytest runs every check as a test:

    from dataworks.testing import GeneratorContract, StrategyContract

    class TestMyStrategy(StrategyContract):
        strategy = "user_defined/strategies/my_strategy.py"
        sample_documents = [{"_id": 1, "status": "OPEN"}, {"_id": 2, "status": "CLOSED"}]

    class TestMyGenerator(GeneratorContract):
        generator = "user_defined/generators/my_generator.py"

Why each rule matters is in the test's docstring (and in CUSTOM_STRATEGIES_GUIDE.md).
DataWorks runs these contracts on every file in its own `user_defined/`.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import bson
import bson.errors

from dataworks.checking import check_file
from dataworks.generators.source import GeneratorSource, resolve_source
from dataworks.generators.worker import BatchMaker, BatchPlan, BuiltBatch
from dataworks.migrations.strategy import BaseMigrationStrategy
from dataworks.plugins import hook_problems
from dataworks.testing.run import as_from_server, make_strategy, run_strategy, strategy_class

MAX_BSON_SIZE = 16 * 1024 * 1024


def id_key(doc: Mapping[str, Any]) -> bytes:
    """A document's `_id` as comparable bytes (1 and 1.0 and True stay distinct)."""
    return bson.encode({"_id": doc["_id"]})


def sample_from_generator(generator: str, count: int = 20, seed: int = 1) -> list[dict[str, Any]]:
    """`count` documents from a generator file or JSON template, as the engine builds them.

    Handy as `sample_documents` of a strategy that migrates what that generator makes.
    """
    plan = BatchPlan(resolve_source(generator), seed, count, count)
    batch = BatchMaker(plan).make(0)
    return bson.decode_all(batch.blob)


class StrategyContract:
    """Checks a strategy file (or class) against what the migration engine assumes."""

    #: `PATH[:ClassName]` of the strategy file, or the class itself.
    strategy: ClassVar[str | Path | type[BaseMigrationStrategy]]
    #: Documents like the ones in your source collection; `transform` runs on them.
    sample_documents: ClassVar[list[dict[str, Any]]] = []

    # -- helpers a subclass may override ---------------------------------------------------

    def samples(self) -> list[dict[str, Any]]:
        return [as_from_server(d) for d in self.sample_documents]

    def outputs_per_document(self) -> list[list[dict[str, Any]]]:
        """What `transform` makes of each sample, one list per source document."""
        return [run_strategy(self.strategy, [doc]) for doc in self.samples()]

    # -- the contract -------------------------------------------------------------------------

    def test_file_passes_check(self) -> None:
        """`dataworks check` finds nothing: it loads, one class, hooks with the right shape."""
        if inspect.isclass(self.strategy):
            problems = [str(p) for p in hook_problems(self.strategy, BaseMigrationStrategy)]
        else:
            problems = [str(p) for p in check_file(str(self.strategy), "strategy").problems]
        assert problems == [], "\n".join(problems)

    def test_builds_from_a_context(self) -> None:
        """The engine builds the strategy as `cls(StrategyContext(...))`."""
        instance = make_strategy(self.strategy)
        assert isinstance(instance, BaseMigrationStrategy)
        assert isinstance(type(instance).display_name(), str)

    def test_query_and_projection_are_stable_documents(self) -> None:
        """Both are part of the run's identity: a checkpointed run resumes only while they
        stay the same, so they must be plain BSON documents that do not change per call."""
        first, second = make_strategy(self.strategy), make_strategy(self.strategy)
        query, projection = first.build_query(), first.projection()
        assert query is None or isinstance(query, Mapping), f"build_query returned {query!r}"
        assert projection is None or isinstance(projection, Mapping), (
            f"projection returned {projection!r}")
        bson.encode(dict(query or {}))
        bson.encode(dict(projection or {}))
        assert (query or {}) == (second.build_query() or {}), "build_query is not stable"
        assert projection == second.projection(), "projection is not stable"

    def test_samples_are_given_when_it_transforms(self) -> None:
        """Without sample documents the transform rules below cannot be checked."""
        if strategy_class(self.strategy).transforms():
            assert self.sample_documents, (
                "set `sample_documents` (documents like your source's) so the contract can "
                "run transform; see dataworks.testing.sample_from_generator")
        else:
            out = run_strategy(self.strategy, self.samples())
            assert out == self.samples(), "a strategy without transform copies unchanged"

    def test_transform_returns_documents(self) -> None:
        """`transform` returns a document, a list of documents, or None (drop) — anything
        else cannot be written — and every output must encode as BSON under 16 MB."""
        instance = make_strategy(self.strategy)
        for doc in self.samples():
            result = instance.transform(doc)
            if inspect.isawaitable(result):
                import asyncio

                result = asyncio.run(_await(result))
            outputs = result if isinstance(result, list | tuple) else (
                [] if result is None else [result])
            for out in outputs:
                assert isinstance(out, Mapping), (
                    f"transform returned {type(out).__name__} for _id {doc.get('_id')!r}; "
                    "return a dict, a list of dicts, or None")
                try:
                    size = len(bson.encode(out))
                except (bson.errors.InvalidDocument, TypeError, OverflowError) as exc:
                    raise AssertionError(
                        f"output of source _id {doc.get('_id')!r} cannot be stored as BSON: "
                        f"{exc}") from None
                assert size <= MAX_BSON_SIZE, f"output of {size} bytes exceeds 16 MB"

    def test_every_output_has_an_id(self) -> None:
        """Without `_id` the driver invents a random one, so a resumed run (which re-sends
        the batch in flight) would write the document twice."""
        for doc, outputs in zip(self.samples(), self.outputs_per_document(), strict=True):
            for out in outputs:
                assert "_id" in out, (
                    f"an output of source _id {doc.get('_id')!r} has no _id; derive it from "
                    "the source document")

    def test_ids_are_deterministic(self) -> None:
        """Same source document, same output `_id`s: on resume the target recognises
        re-sent documents as already present instead of storing them twice. Checked with a
        fresh instance, and one document at a time versus all at once."""
        first = self.outputs_per_document()
        again = self.outputs_per_document()
        together = run_strategy(self.strategy, self.samples())
        ids = [[id_key(o) for o in outs] for outs in first]
        assert ids == [[id_key(o) for o in outs] for outs in again], (
            "transform gives different _ids on a second run")
        assert [k for keys in ids for k in keys] == [id_key(o) for o in together], (
            "transform's _ids depend on which other documents were in the batch")

    def test_output_ids_are_unique(self) -> None:
        """Two outputs with one `_id` collide in the target: the second is counted as
        'already present' and silently lost."""
        seen: dict[bytes, Any] = {}
        for doc, outputs in zip(self.samples(), self.outputs_per_document(), strict=True):
            for out in outputs:
                key = id_key(out)
                assert key not in seen, (
                    f"_id {out['_id']!r} comes from source documents {seen[key]!r} and "
                    f"{doc.get('_id')!r}")
                seen[key] = doc.get("_id")


async def _await(result: Any) -> Any:
    return await result


class GeneratorContract:
    """Checks a generator file (or JSON template) against what the generation engine assumes."""

    #: `PATH[:ClassName]` of the generator file, or a `.json` template.
    generator: ClassVar[str | Path]
    seed: ClassVar[int] = 12345
    batch_size: ClassVar[int] = 50
    #: Set False for a generator whose output deliberately ignores the seed.
    varies_with_seed: ClassVar[bool] = True

    def source(self) -> GeneratorSource:
        return resolve_source(str(self.generator))

    def plan(self, seed: int | None = None) -> BatchPlan:
        return BatchPlan(self.source(), self.seed if seed is None else seed,
                         total=3 * self.batch_size, batch_size=self.batch_size)

    def build(self, *indices: int, seed: int | None = None) -> list[BuiltBatch]:
        """Batches built the way a worker process builds them (one maker, in this order)."""
        maker = BatchMaker(self.plan(seed))
        return [maker.make(i) for i in indices]

    # -- the contract -------------------------------------------------------------------------

    def test_file_passes_check(self) -> None:
        """`dataworks check` finds nothing: it loads, one class, hooks with the right shape."""
        problems = [str(p) for p in check_file(str(self.generator), "generator").problems]
        assert problems == [], "\n".join(problems)

    def test_builds_batches_of_bson_documents(self) -> None:
        """A batch is `batch_size` BSON documents, each with an `_id`, under 16 MB."""
        (batch,) = self.build(0)
        docs = bson.decode_all(batch.blob)
        assert batch.count == len(docs) == self.batch_size
        for doc in docs:
            assert "_id" in doc
            assert len(bson.encode(doc)) <= MAX_BSON_SIZE

    def test_same_seed_same_documents(self) -> None:
        """`--seed S` must reproduce a run byte for byte (and `--resume` relies on it): use
        `self.random`, never the `random` module or the clock."""
        first, second = self.build(0, 1), self.build(0, 1)
        assert [b.blob for b in first] == [b.blob for b in second], (
            "two runs with the same seed made different documents")

    def test_batches_do_not_depend_on_order(self) -> None:
        """Workers build batches in any order and any number of workers may share the work,
        so batch 2 must be the same whether or not batches 0 and 1 came first."""
        in_order = self.build(0, 1, 2)[2].blob
        alone = self.build(2)[0].blob
        assert in_order == alone, (
            "batch 2 changed with the batches built before it: keep no state between "
            "documents other than what comes from self.random and document_id")

    def test_ids_are_unique(self) -> None:
        """Duplicate `_id`s would be counted as 'already present' and lost."""
        ids = [id_key(d) for b in self.build(0, 1, 2) for d in bson.decode_all(b.blob)]
        assert len(set(ids)) == len(ids), "documents share an _id"

    def test_seed_changes_documents(self) -> None:
        """A different seed gives different documents (else the seed is not used)."""
        if not self.varies_with_seed:
            assert self.build(0)[0].count == self.batch_size
            return
        def without_ids(seed: int) -> list[dict[str, Any]]:
            docs = bson.decode_all(self.build(0, seed=seed)[0].blob)
            return [{k: v for k, v in d.items() if k != "_id"} for d in docs]

        assert without_ids(self.seed) != without_ids(self.seed + 1), (
            "the seed does not change the documents; use self.random")

    def test_loads_in_a_fresh_process(self) -> None:
        """Worker processes load the file again from its path, in a new interpreter: module
        code must not depend on what the main process imported or on the current module."""
        source = self.source()
        code = (
            "import sys, bson\n"
            "from dataworks.generators.source import GeneratorSource\n"
            "from dataworks.generators.worker import BatchMaker, BatchPlan\n"
            f"src = GeneratorSource({source.kind!r}, {source.path!r}, {source.class_name!r})\n"
            f"b = BatchMaker(BatchPlan(src, {self.seed}, 5, 5)).make(0)\n"
            "sys.stdout.write(b.blob.hex())\n"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        here = BatchMaker(BatchPlan(source, self.seed, 5, 5)).make(0).blob
        assert bytes.fromhex(done.stdout) == here, "a worker process builds other documents"
