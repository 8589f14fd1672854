"""Which batches of a generation run are acknowledged, in a form small enough to checkpoint.

Writers finish batches out of order, but never more than a bounded number ahead, so the
state is a watermark (every batch below it is done) plus the few done batches above it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


class BatchLedger:
    def __init__(self, total: int, batch_size: int, watermark: int = 0,
                 done_above: list[int] | None = None) -> None:
        self.total = total
        self.batch_size = batch_size
        self.batches = -(-total // batch_size) if total else 0
        self.watermark = watermark
        self.done_above: set[int] = set(done_above or ())
        self._advance()

    def _advance(self) -> None:
        while self.watermark in self.done_above:
            self.done_above.discard(self.watermark)
            self.watermark += 1

    def size_of(self, batch: int) -> int:
        """Documents in batch `batch` (the last one may be short)."""
        return max(0, min(self.batch_size, self.total - batch * self.batch_size))

    def mark_done(self, batch: int) -> None:
        if batch >= self.watermark:
            self.done_above.add(batch)
            self._advance()

    def is_done(self, batch: int) -> bool:
        return batch < self.watermark or batch in self.done_above

    def pending(self) -> Iterator[int]:
        """Batch indices still to write, ascending; lazily, so memory stays flat."""
        for batch in range(self.watermark, self.batches):
            if batch not in self.done_above:
                yield batch

    @property
    def complete(self) -> bool:
        return self.watermark >= self.batches

    def documents_done(self) -> int:
        below = min(self.total, self.watermark * self.batch_size)
        return below + sum(self.size_of(b) for b in self.done_above)

    def to_state(self) -> dict[str, Any]:
        return {"watermark": self.watermark, "done_above": sorted(self.done_above)}
