"""When a live migration cuts over: one gate for every collection of the run.

A collection may cut over only when the whole run can: in a database run, a collection that
stopped following while another was still copying would miss the changes made to it
meanwhile. So every following collection reports to one gate after each page of its stream,
and the gate opens when

  - every member is following and caught up, and none has seen a change for
    `--cutover-after-idle` seconds, or
  - `migrate --cutover` left a request under the run's identity in the checkpoint store
    (polled at most once a second; the operator has stopped the application's writes):
    a member then cuts over at an empty page asked for after the request was made.

`now` is when the member's empty page was asked for (the replay reads a page ahead, so it
may be handled a while later): no change came between the last one and then.

Once open it stays open: each member cuts over at its next empty page (caught up). The
single-collection form is a gate with one member.
"""

from __future__ import annotations

from collections.abc import Iterable

from dataworks.checkpoints.store import CheckpointStore

CUTOVER_POLL_S = 1.0


class CutoverGate:
    def __init__(self, store: CheckpointStore, request_key: str, idle: float | None,
                 members: Iterable[str]) -> None:
        self.store = store
        self.request_key = request_key
        self.idle = idle
        # member -> time of its last change while caught up; None: copying, or not caught up
        self.members: dict[str, float | None] = dict.fromkeys(members)
        self.open = False
        self._last_poll = float("-inf")
        self.requested_at: float | None = None  # Unix time of a `migrate --cutover` request

    def leave(self, member: str) -> None:
        """A member that will not follow (finished earlier, failed): the rest need not wait."""
        self.members.pop(member, None)

    async def due(self, member: str, *, caught_up: bool, last_change: float,
                  now: float, asked_at: float | None = None) -> bool:
        """Called after each page of `member`'s stream: should it cut over now?
        `asked_at`: when the page was asked for, Unix time (None: just now)."""
        self.members[member] = last_change if caught_up else None
        if not caught_up:
            return False
        if not self.open and self.idle is not None:
            times = list(self.members.values())
            self.open = all(t is not None and now - t >= self.idle for t in times)
        if not self.open and now - self._last_poll >= CUTOVER_POLL_S:
            self._last_poll = now
            request = await self.store.load(self.request_key)
            self.open = request is not None
            if isinstance(request, dict) and isinstance(request.get("requested_at"),
                                                        int | float):
                self.requested_at = float(request["requested_at"])
        # Writes stopped before the request: a page asked for earlier may miss the last ones.
        before_request = asked_at is not None and self.requested_at is not None \
            and asked_at < self.requested_at
        return self.open and not before_request

    async def done(self) -> None:
        """The request, if any, is consumed once the run cut over."""
        await self.store.delete(self.request_key)
