"""How far a live migration's target is behind its source (pure logic, no I/O).

The target holds every change up to a point in time, and the stream says which:

  - a page of events applied: up to the last event's `clusterTime`;
  - an empty page (nothing more to read): up to when that page was asked for.

The lag is the time since that point, taken when it is read, so it grows while the next page
is slow to come (a slow server shows as a growing lag, not as the last page's frozen 0). It
is unknown (None) until this run has handled its first page, and always where events carry
no time (Cosmos DB: its required `$project` drops `clusterTime`, and a throttled page is
empty without the stream being caught up).
"""

from __future__ import annotations

import time


class Lag:
    def __init__(self, *, timed: bool = True) -> None:
        self.timed = timed  # False: the stream gives no times (Cosmos DB): always unknown
        self.complete_until: float | None = None  # Unix time the target is complete up to

    def applied(self, last_event_at: float | None) -> None:
        """A page of events was applied; `last_event_at` is its last event's time."""
        if last_event_at is not None:
            self._advance(last_event_at)

    def caught_up(self, asked_at: float) -> None:
        """A page asked for at `asked_at` came back empty: nothing older is left."""
        self._advance(asked_at)

    def seconds(self, now: float | None = None) -> float | None:
        if self.complete_until is None:
            return None
        return round(max((time.time() if now is None else now) - self.complete_until, 0.0), 1)

    def _advance(self, at: float) -> None:
        if self.timed:
            self.complete_until = at if self.complete_until is None \
                else max(self.complete_until, at)
