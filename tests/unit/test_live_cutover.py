"""The cutover gate of a live run (pure logic; the store is a dict)."""

from __future__ import annotations

import asyncio
from typing import Any

from dataworks.migrations.live_cutover import CutoverGate


class Store:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    async def load(self, key: str) -> Any:
        return self.data.get(key)

    async def delete(self, key: str) -> None:
        self.data.pop(key, None)


def test_opens_only_when_every_member_is_idle_long_enough() -> None:
    async def scenario() -> None:
        gate = CutoverGate(Store(), "run:cutover", 3.0, ["a", "b"])  # type: ignore[arg-type]
        # `a` idle for 10 s while `b` is still copying: not yet
        assert not await gate.due("a", caught_up=True, last_change=0.0, now=10.0)
        # `b` follows but saw a change 1 s ago: not yet, for either
        assert not await gate.due("b", caught_up=True, last_change=9.0, now=10.0)
        assert not await gate.due("a", caught_up=True, last_change=0.0, now=10.5)
        # `b` got busy again: `a` must keep following
        assert not await gate.due("b", caught_up=False, last_change=11.0, now=11.0)
        assert not await gate.due("a", caught_up=True, last_change=0.0, now=13.0)
        # both idle for 3 s: open, and it stays open for the other member
        assert not await gate.due("b", caught_up=True, last_change=11.0, now=12.0)
        assert await gate.due("b", caught_up=True, last_change=11.0, now=14.0)
        assert await gate.due("a", caught_up=True, last_change=0.0, now=14.1)
    asyncio.run(scenario())


def test_a_member_that_leaves_is_not_waited_for_and_a_request_opens_it() -> None:
    async def scenario() -> None:
        store = Store()
        gate = CutoverGate(store, "run:cutover", None, ["a", "b"])  # type: ignore[arg-type]
        gate.leave("b")  # finished in an earlier run
        assert not await gate.due("a", caught_up=True, last_change=0.0, now=100.0)
        store.data["run:cutover"] = {"requested_at": 1}
        assert not await gate.due("a", caught_up=False, last_change=100.5, now=100.5)
        assert await gate.due("a", caught_up=True, last_change=100.5, now=101.5)
        await gate.done()
        assert store.data == {}
    asyncio.run(scenario())


def test_a_request_is_honoured_only_at_a_page_asked_for_after_it() -> None:
    """The replay reads a page ahead: an empty page asked for before the operator's request
    (writes stopped just before it) may miss the last changes."""
    async def scenario() -> None:
        store = Store()
        gate = CutoverGate(store, "run:cutover", None, ["a"])  # type: ignore[arg-type]
        store.data["run:cutover"] = {"requested_at": 1000.0}
        assert not await gate.due("a", caught_up=True, last_change=0.0, now=50.0,
                                  asked_at=999.0)
        assert await gate.due("a", caught_up=True, last_change=0.0, now=50.2, asked_at=1000.5)
    asyncio.run(scenario())


def test_idleness_counts_up_to_when_the_empty_page_was_asked_for() -> None:
    async def scenario() -> None:
        gate = CutoverGate(Store(), "run:cutover", 3.0, ["a"])  # type: ignore[arg-type]
        # a change applied at 10; an empty page asked for at 9 (read ahead), handled at 20
        assert not await gate.due("a", caught_up=True, last_change=10.0, now=9.0)
        assert await gate.due("a", caught_up=True, last_change=10.0, now=13.5)
    asyncio.run(scenario())
