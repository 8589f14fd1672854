"""The phases of one migration run, as its checkpoint records them.

    copy -> indexes -> verify -> done

A phase is recorded as passed only once its effect is durable: `indexes` starts when every
batch is acknowledged, `verify` once the deferred indexes are built (or copied), `done` when
verification found the target equal (or was not asked for). So a run killed in any phase is
continued in that phase by the same command, and only a `done` run says "nothing to do". A
verification that found differences leaves the run in `verify`: running the same command
again verifies again (and `--repair` fixes the listed `_id`s first).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dataworks.verify import VerifyReport

COPY, INDEXES, VERIFY, DONE = "copy", "indexes", "verify", "done"
PHASES = (COPY, INDEXES, VERIFY, DONE)
DIFFERENCES_FILE = "differences.json"


def phase_of(state: dict[str, Any]) -> str:
    """The phase a checkpoint is in; checkpoints written before phases existed hold only
    `finished`."""
    phase = state.get("phase")
    if phase in PHASES:
        return str(phase)
    return DONE if state.get("finished") else COPY


def differences_path(run_dir: Path, run_id: str) -> Path:
    """Where a run keeps the `_id`s its last verification found different (the same JSON as
    `dataworks verify --report`, so `--repair-from` reads either)."""
    return run_dir / run_id / DIFFERENCES_FILE


def record_differences(path: Path, result: VerifyReport | None) -> None:
    """Write the differences of a DIFFERENT verification; remove a stale file otherwise."""
    if result is None or result.equal:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    result.write_json(path)
