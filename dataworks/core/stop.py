"""The second Ctrl-C: stop at once, and say in one line what that means for the checkpoint."""

from __future__ import annotations

import logging
import os
import sys
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
