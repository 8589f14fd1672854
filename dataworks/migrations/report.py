"""What a migration did, for people (summary table) and programs (fields)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

MigrationStatus = Literal["completed", "nothing to do", "interrupted", "failed"]


@dataclass
class MigrationReport:
    run_id: str
    source: str  # hosts and namespace (never credentials)
    target: str
    strategy: str
    status: MigrationStatus = "completed"
    read: int = 0
    written: int = 0
    already_present: int = 0  # duplicate key, the same document already on the target
    replaced: int = 0  # a different document under the same `_id`, replaced by the new one
    kept_different: int = 0  # ... kept as it was (--keep-existing); see kept_ids_file
    transformed: int = 0
    dropped: int = 0
    rejected: int = 0
    retries: int = 0
    throttled: int = 0  # throttling answers (16500 / 429 / 50), both sides
    source_throttled: int = 0  # of which on source reads
    # how far reads were slowed down: {"lowest_cursors": n, "lowest_batch_size": n}
    source_read_limits: dict[str, int] = field(default_factory=dict)
    resumed_from: int = 0
    duration_s: float = 0.0
    docs_per_second: float = 0.0
    mb_per_second: float = 0.0
    peak_memory_mb: float = 0.0
    # Cosmos DB request units charged (0.0 when no side is Cosmos DB), in total and by
    # "side:command", e.g. {"source:getMore": 1234.5, "target:insert": 9876.0}
    request_units: float = 0.0
    request_units_by: dict[str, float] = field(default_factory=dict)
    source_count: int | None = None
    target_count: int | None = None
    partitions: int = 0
    checkpoint_store: str = ""
    dead_letter_file: str | None = None
    differences_file: str | None = None  # the `_id`s a DIFFERENT verification found
    # An earlier verification of this run found differences and this run did not verify
    # (--verify none): nothing proves the target now.
    unproven_differences: bool = False
    repair: dict[str, int] | None = None  # what --repair did (repair.RepairOutcome)
    # Documents in the dead-letter file at the end, from this run and the earlier runs of
    # this migration (`rejected` counts this run's only); not 0 = the target is incomplete.
    dead_letters: int = 0
    kept_ids_file: str | None = None
    kept_total: int = 0  # `_id`s in kept_ids_file, all runs
    retried_rejected: int = 0  # dead letters sent again (--retry-rejected)
    warnings: list[str] = field(default_factory=list)
    verification: dict[str, Any] | None = None
    indexes: dict[str, Any] | None = None
    live: dict[str, Any] | None = None  # --live: change events applied, lag, cutover

    @property
    def verified_equal(self) -> bool | None:
        """None when no verification ran."""
        return None if self.verification is None else bool(self.verification.get("equal"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def closing_line(self) -> str:
        line = (f"{self.written:,} migrated, {self.already_present:,} already present, "
                f"{self.replaced:,} replaced, ")
        if self.kept_different:
            line += f"{self.kept_different:,} kept (different), "
        return line + f"{self.dropped:,} dropped, {self.rejected:,} rejected"

    def problems(self) -> list[str]:
        """What keeps the target from being the source's copy, as the user reads it."""
        found = []
        if self.dead_letters:
            found.append(f"finished with {self.dead_letters:,} rejected: the dead-letter file "
                         f"{self.dead_letter_file} lists them (one JSON line each: _id, code, "
                         "reason, and index/key for a unique-index clash); fix the cause and "
                         "run the same command with --retry-rejected")
        if self.unproven_differences:
            found.append(f"the last verification of this migration found differences (listed "
                         f"in {self.differences_file}) and --verify none cannot prove them "
                         "gone: run the same command with --verify hash (add --repair to "
                         "re-copy them)")
        if self.kept_total:
            found.append(f"{self.kept_total:,} target documents differ from the source and were "
                         f"kept (--keep-existing); their _ids are in {self.kept_ids_file}")
        return found
