"""What a database run did: one row per collection (or view) and a total, for the summary
table, `--report FILE` and the exit code."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from dataworks.migrations.report import MigrationReport

CollectionStatus = Literal[
    "not started", "running", "completed", "already finished", "failed", "interrupted",
    "skipped", "view created",
]
_FINE = ("completed", "already finished", "skipped", "view created")


@dataclass
class CollectionOutcome:
    source: str  # db.collection
    target: str
    kind: str = "collection"  # collection | view | timeseries
    strategy: str = "default"
    run_id: str | None = None
    status: CollectionStatus = "not started"
    source_count: int | None = None
    target_count: int | None = None
    read: int = 0
    migrated: int = 0
    already_present: int = 0
    replaced: int = 0
    rejected: int = 0
    dropped: int = 0
    resumed_from: int = 0
    duration_s: float = 0.0
    verification: dict[str, Any] | None = None  # {"mode", "equal", ...} of the check that ran
    verified_earlier: bool = False  # verification is the stored one of an earlier run
    option_problems: list[str] = field(default_factory=list)  # what the target did not take
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    dead_letter_file: str | None = None
    # rejected or kept documents (MigrationReport.problems): the collection is not a copy
    problems: list[str] = field(default_factory=list)
    # --live: events applied (this run / in all), resumed from event, lag_s, cut_over
    live: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """Finished, verified equal where verified, every option on the target."""
        if self.status not in _FINE or self.option_problems or self.problems:
            return False
        return self.verification is None or bool(self.verification.get("equal"))

    def take(self, report: MigrationReport) -> None:
        """This run's figures from the collection's engine report."""
        self.read = report.read
        self.migrated = report.written
        self.already_present = report.already_present
        self.replaced = int(getattr(report, "replaced", 0) or 0)  # conflict handling, when on
        self.rejected = report.rejected
        self.dropped = report.dropped
        self.resumed_from = report.resumed_from
        self.duration_s = report.duration_s
        self.source_count = report.source_count
        self.target_count = report.target_count
        self.dead_letter_file = report.dead_letter_file
        self.problems = report.problems()
        self.warnings.extend(report.warnings)
        if report.verification is not None:
            self.verification = {k: report.verification.get(k) for k in
                                 ("mode", "equal", "source_count", "target_count", "compared",
                                  "missing_count", "extra_count", "changed_count")
                                 if k in report.verification}

    def verdict(self) -> str:
        if self.error:
            return "failed"
        if self.verification is None:
            return "-" if self.status != "skipped" else "skipped"
        word = "EQUAL" if self.verification.get("equal") else "DIFFERENT"
        return f"{self.verification.get('mode')}: {word}" + (" (earlier run)"
                                                             if self.verified_earlier else "")


@dataclass
class DatabaseReport:
    run_id: str
    source: str  # masked URI
    target: str
    checkpoint_store: str
    parallel_collections: int
    collections: list[CollectionOutcome] = field(default_factory=list)
    status: Literal["completed", "interrupted", "failed"] = "completed"
    duration_s: float = 0.0
    docs_per_second: float = 0.0
    peak_memory_mb: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "completed" and all(c.ok for c in self.collections)

    def problems(self) -> list[CollectionOutcome]:
        return [c for c in self.collections if not c.ok]

    def totals(self) -> dict[str, int]:
        keys = ("source_count", "target_count", "read", "migrated", "already_present",
                "replaced", "rejected", "dropped")
        return {k: sum(getattr(c, k) or 0 for c in self.collections) for k in keys}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for row, outcome in zip(data["collections"], self.collections, strict=True):
            row["ok"] = outcome.ok
        data["totals"] = self.totals()
        data["ok"] = self.ok
        return data
