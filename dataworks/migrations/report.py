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
    already_present: int = 0
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
    repair: dict[str, int] | None = None  # what --repair did (repair.RepairOutcome)
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
        return (
            f"{self.written:,} migrated, {self.already_present:,} already present, "
            f"{self.dropped:,} dropped, {self.rejected:,} rejected"
        )
