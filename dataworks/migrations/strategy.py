"""The class users subclass to shape a migration.

Order of calls in one run (see CUSTOM_STRATEGIES_GUIDE.md):

    on_start()                      once per run (fresh or resumed), before anything is read
    partitions(planner)             once on a fresh run; the plan is saved with the checkpoint
    build_query() / projection()    once; what every partition cursor reads
    get_resume_point()              once, only when no checkpoint exists (legacy resume)
    transform(doc)                  per document, only if the strategy overrides it
    on_finish(summary)              once, after the run's copy, indexes and verification

A strategy that does not override `transform` gets the raw-BSON fast path: documents are
never decoded on their way from the source cursor to the target.

Resume relies on one rule: `transform` must be deterministic in `_id` (the same source
document always gives documents with the same `_id`s), so a re-sent document is recognised
by the target as already present.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from dataworks.core.clients import ReadOnlyCollection
    from dataworks.migrations.partitioning import Partition, PartitionPlanner
    from dataworks.migrations.report import MigrationReport


Document = dict[str, Any]
TransformResult = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None


@dataclass
class StrategyContext:
    """What a strategy may use: the read-only source collection and names of both sides."""

    source: ReadOnlyCollection
    source_namespace: str
    target_namespace: str
    batch_size: int
    options: dict[str, Any] = field(default_factory=dict)


class BaseMigrationStrategy:
    """Subclass this in a `.py` file and pass it with `dataworks migrate --strategy PATH`."""

    # hook name -> must be `async def`
    __hooks__: ClassVar[dict[str, bool]] = {
        "on_start": True,
        "partitions": True,
        "build_query": False,
        "projection": False,
        "transform": False,
        "get_resume_point": True,
        "read_batch": True,
        "on_finish": True,
    }
    # hooks that may be `def` or `async def` (the others must be exactly as marked above)
    __async_allowed__: ClassVar[frozenset[str]] = frozenset({"transform"})

    #: Shown in logs and part of the run's identity (defaults to the class name).
    name: ClassVar[str | None] = None

    def __init__(self, context: StrategyContext) -> None:
        self.context = context

    async def on_start(self) -> None:
        """Called at the start of every run, resumed ones too, before reading; check
        preconditions or load lookups here."""

    async def partitions(self, planner: PartitionPlanner) -> list[Partition] | None:
        """How to split the source. None lets the engine split by `_id` ranges."""
        return None

    def build_query(self) -> dict[str, Any]:
        """The filter every partition cursor adds to its `_id` range."""
        return {}

    def projection(self) -> dict[str, Any] | None:
        """Fields to read; None reads whole documents."""
        return None

    def transform(self, doc: Document) -> TransformResult:
        """Return a document, a list of documents, or None to drop it. May be `async def`."""
        return doc

    async def get_resume_point(self) -> Any:
        """Legacy resume hook: the `_id` after which to start when there is no checkpoint."""
        return None

    async def read_batch(self, batch_size: int, resume_from: Any = None) -> list[Document]:
        """Legacy reading hook. Overriding it replaces the partitioned reader: return the next
        `batch_size` documents in ascending `_id` order after `resume_from`, [] when done."""
        raise NotImplementedError

    async def on_finish(self, summary: MigrationReport) -> None:
        """Called once at the end of a run that got through its phases (copy, indexes,
        verification, also when it found differences); not after a failure or interruption."""

    # -- introspection used by the engine -------------------------------------------------

    @classmethod
    def display_name(cls) -> str:
        return cls.name or cls.__name__

    @classmethod
    def transforms(cls) -> bool:
        return cls.transform is not BaseMigrationStrategy.transform

    @classmethod
    def reads_itself(cls) -> bool:
        return cls.read_batch is not BaseMigrationStrategy.read_batch


class DefaultStrategy(BaseMigrationStrategy):
    """Copies every document unchanged, as raw BSON."""

    name = "default"
