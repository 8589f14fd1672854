"""The database run's progress lines: one per running collection, finished ones folded into
the overall count (pure: a run object with hand-set counters, no server)."""

from __future__ import annotations

from dataworks.core.clients import Endpoint
from dataworks.migrations.database import CollectionJob, DatabaseOptions, DatabaseRun
from dataworks.migrations.database_report import CollectionOutcome
from dataworks.migrations.engine import MigrationOptions
from dataworks.migrations.namespaces import NamespacePair, Selection
from dataworks.migrations.strategy import DefaultStrategy
from dataworks.monitoring.database_progress import _lines


def job(name: str, status: str, done: int, total: int) -> CollectionJob:
    base = MigrationOptions(source=Endpoint("mongodb://h/", "a", name),
                            target=Endpoint("mongodb://t/", "a", name),
                            strategy_cls=DefaultStrategy)
    outcome = CollectionOutcome(f"a.{name}", f"a.{name}", status=status)  # type: ignore[arg-type]
    j = CollectionJob(NamespacePair(f"a.{name}", f"a.{name}"), {"name": name}, outcome,
                      options=base, count=total)
    j.metrics.total, j.metrics.written = total, done
    return j


def test_a_line_per_running_collection_and_one_overall_line() -> None:
    base = MigrationOptions(source=Endpoint("mongodb://h/", "a", "x"),
                            target=Endpoint("mongodb://t/", "a", "x"),
                            strategy_cls=DefaultStrategy)
    run = DatabaseRun(DatabaseOptions(base=base, selection=Selection(source_dbs=("a",))))
    run.jobs = [job("done1", "completed", 300, 300), job("done2", "already finished", 0, 200),
                job("busy", "running", 50, 100), job("later", "not started", 0, 400)]
    run.jobs[1].outcome.source_count = 200
    lines = _lines(run)
    assert lines[0].startswith("database: 2/4 collections done · 550/1,000 documents")
    assert len(lines) == 2 and lines[1].strip().startswith("a.busy: 50/100 documents")


def test_a_collection_in_its_verify_phase_shows_the_phase_with_its_own_progress() -> None:
    base = MigrationOptions(source=Endpoint("mongodb://h/", "a", "x"),
                            target=Endpoint("mongodb://t/", "a", "x"),
                            strategy_cls=DefaultStrategy)
    run = DatabaseRun(DatabaseOptions(base=base, selection=Selection(source_dbs=("a",))))
    run.jobs = [job("busy", "running", 100, 100)]
    m = run.jobs[0].metrics
    with m.in_phase("verifying (hash)", total=100):
        m.phase_done = 40
        line = _lines(run)[1].strip()
    assert line.startswith("a.busy: 100 documents copied · ▸ verifying (hash) · "
                           "40/100 documents · "), line
    assert "ETA" in line


def test_a_following_collection_shows_its_lag() -> None:
    """--live: a copied collection's line shows its replay (events, events/s, lag)."""
    base = MigrationOptions(source=Endpoint("mongodb://h/", "a", "x"),
                            target=Endpoint("mongodb://t/", "a", "x"),
                            strategy_cls=DefaultStrategy)
    run = DatabaseRun(DatabaseOptions(base=base, selection=Selection(source_dbs=("a",))))
    run.jobs = [job("copying", "running", 50, 100), job("following", "running", 100, 100)]
    run.jobs[1].metrics.live = {"phase": "replay", "events_applied": 1234,
                                "events_per_s": 56.0, "lag_s": 2.5}
    lines = _lines(run)
    assert lines[1].strip().startswith("a.copying: 50/100 documents")
    assert lines[2].strip() == "a.following: replay · 1,234 events · 56 events/s · lag 2.5 s"
    assert run.refresh_metrics().live == {"collections": {"a.following": {
        "phase": "replay", "events_applied": 1234, "events_per_s": 56.0, "lag_s": 2.5}}}
