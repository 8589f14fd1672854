"""Reading `.env_local` so that its mistakes point at a line.

A misspelt key (`MIG_TARGET_DB_COLECTION`) would be ignored in silence and the run would
use a default; it is warned about with the closest known name. The line of each key is kept
so a bad value can be reported as `.env_local:7`.
"""

from __future__ import annotations

import difflib
import logging
import re
from pathlib import Path

log = logging.getLogger("dataworks.settings")
_KEY = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")
OUR_PREFIXES = ("MIG_", "GEN_", "FRAMEWORK_")


def key_lines(path: Path) -> dict[str, int]:
    """{KEY (upper case): line number} for each assignment in the file (the last one wins,
    as in python-dotenv)."""
    lines: dict[str, int] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return lines
    for number, line in enumerate(text.splitlines(), start=1):
        match = _KEY.match(line)
        if match:
            lines[match.group(1).upper()] = number
    return lines


def warn_unknown_keys(path: Path, keys: dict[str, int], known: set[str]) -> None:
    """Warn about each key that looks like a DataWorks setting but is none."""
    for key, line in sorted(keys.items(), key=lambda item: item[1]):
        if key in known or not key.startswith(OUR_PREFIXES):
            continue
        near = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
        advice = f"; did you mean {near[0]}?" if near else " (see `dataworks config show`)"
        log.warning("%s:%d: unknown setting %s, ignored%s", path, line, key, advice)
