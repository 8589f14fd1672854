"""Ctrl-C and SIGTERM: the first asks the run to stop cleanly (it saves its checkpoint), the
second stops at once and says in one line what that means for the checkpoint."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from typing import NoReturn

import psutil

log = logging.getLogger("dataworks")

STOPPED_AT_ONCE = (
    "stopped at once (second Ctrl-C): batches in flight were abandoned, not saved; the last "
    "checkpoint stands, so the same command resumes from it and re-sends at most what came "
    "after it (documents already on the target count as already present, never twice)"
)


def stop_at_once() -> NoReturn:
    """Exit now. Not SystemExit: asyncio.run would then wait for every task to unwind, and a
    task stuck on a stalled link would hold the process for minutes. Worker processes go too."""
    log.error(STOPPED_AT_ONCE, extra={"event": "stopped_at_once"})
    for handler in logging.getLogger().handlers + log.handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    for child in psutil.Process().children(recursive=True):
        try:
            child.kill()
        except psutil.Error:
            pass
    os._exit(130)


@contextlib.contextmanager
def stop_on_signals(request_stop: Callable[[], None], doing: str, *,
                    enabled: bool = True) -> Iterator[None]:
    """While inside (in the running event loop): the first SIGINT/SIGTERM logs
    "<SIGNAL> received: <doing> (press again to stop at once)" and calls `request_stop`; the
    second calls `stop_at_once`. Handlers are removed on the way out."""
    if not enabled:
        yield
        return
    loop = asyncio.get_running_loop()
    presses = 0

    def on_signal(signum: int) -> None:
        nonlocal presses
        presses += 1
        if presses > 1:
            stop_at_once()
        log.warning("%s received: %s (press again to stop at once)",
                    signal.Signals(signum).name, doing)
        request_stop()

    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(signum, on_signal, signum)
            installed.append(signum)
    try:
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
