"""Per-partition high-water marks that only move over acknowledged batches.

Readers number the batches of a partition 0, 1, 2 ... in reading order. Insert workers finish
them in any order. The mark of a partition is the mark of batch k such that batches 0..k are
all acknowledged — the last `_id` of batch k (a resumed run reads `_id > mark`) or, for a
partition read in natural order, the position after it (natural.py) — so everything up to
the mark is on the target. Batches acknowledged beyond a gap are re-sent on resume and
counted as already present (duplicate key), never written twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dataworks.migrations.partitioning import Partition


@dataclass
class PartitionState:
    partition: Partition
    high_water: Any = None  # mark of the last batch acknowledged in order; None = nothing yet
    done_count: int = 0  # source documents at or below the mark
    finished: bool = False
    # in-flight bookkeeping (not persisted)
    next_to_ack: int = 0
    acked: dict[int, tuple[Any, int]] = field(default_factory=dict)
    reading_done_at: int | None = None  # number of batches once the cursor is exhausted

    def acknowledge(self, seq: int, mark: Any, count: int) -> None:
        self.acked[seq] = (mark, count)
        while self.next_to_ack in self.acked:
            mark, done = self.acked.pop(self.next_to_ack)
            self.high_water = mark
            self.done_count += done
            self.next_to_ack += 1
        self._check_finished()

    def reading_finished(self, batches: int) -> None:
        self.reading_done_at = batches
        self._check_finished()

    def _check_finished(self) -> None:
        if self.reading_done_at is not None and self.next_to_ack >= self.reading_done_at:
            self.finished = True

    def to_state(self) -> dict[str, Any]:
        return {
            **self.partition.to_state(),
            "high_water": self.high_water,
            "done_count": self.done_count,
            "finished": self.finished,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PartitionState:
        return cls(
            partition=Partition.from_state(state),
            high_water=state.get("high_water"),
            done_count=int(state.get("done_count", 0)),
            finished=bool(state.get("finished", False)),
        )


class Watermarks:
    """All partitions of a run."""

    def __init__(self, states: list[PartitionState]) -> None:
        self.states = {s.partition.index: s for s in states}

    def __getitem__(self, index: int) -> PartitionState:
        return self.states[index]

    def pending(self) -> list[PartitionState]:
        return [s for s in self.states.values() if not s.finished]

    def done_count(self) -> int:
        return sum(s.done_count for s in self.states.values())

    def all_finished(self) -> bool:
        return all(s.finished for s in self.states.values())

    def to_state(self) -> list[dict[str, Any]]:
        return [s.to_state() for s in sorted(self.states.values(), key=lambda s: s.partition.index)]

    @classmethod
    def from_state(cls, items: list[dict[str, Any]]) -> Watermarks:
        return cls([PartitionState.from_state(item) for item in items])
