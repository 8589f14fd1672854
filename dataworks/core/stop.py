"""The second Ctrl-C: stop at once, and say in one line what that means for the checkpoint."""

from __future__ import annotations

import logging
from typing import NoReturn

log = logging.getLogger("dataworks")

STOPPED_AT_ONCE = (
    "stopped at once (second Ctrl-C): batches in flight were abandoned, not saved; the last "
    "checkpoint stands, so the same command resumes from it and re-sends at most what came "
    "after it (documents already on the target count as already present, never twice)"
)


def stop_at_once() -> NoReturn:
    log.error(STOPPED_AT_ONCE, extra={"event": "stopped_at_once"})
    raise SystemExit(130)
