"""Logging: readable text for people, or one JSON object per line for machines.

Structured events (`run_started`, `checkpoint_saved`, `retry`, `throttled`, `alert`,
`run_finished`, `error`) are logged with `extra={"event": name, ...fields}`; the JSON
formatter puts those fields at the top level of the line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from dataworks.config.uri import mask_secrets

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_FOREIGN = ("py.warnings", "pymongo")
_OURS = "_dataworks_handler"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": mask_secrets(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = mask_secrets(value) if isinstance(value, str) else value
        if record.exc_info:
            payload["exception"] = mask_secrets(self.formatException(record.exc_info))
        return mask_secrets(json.dumps(payload, default=str))


class TextFormatter(logging.Formatter):
    """Driver messages and tracebacks can quote a connection string: every line is masked."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(super().format(record))


def configure_logging(*, fmt: str = "text", quiet: bool = False, debug: bool = False) -> None:
    """Send dataworks logs to stderr in the chosen format (idempotent)."""
    logger = logging.getLogger("dataworks")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO)
    # Driver and Python warnings would otherwise reach stderr as plain text.
    logging.captureWarnings(True)
    for name in _FOREIGN:
        foreign = logging.getLogger(name)
        for old in list(foreign.handlers):
            if getattr(old, _OURS, False):
                foreign.removeHandler(old)
        setattr(handler, _OURS, True)
        foreign.addHandler(handler)
        foreign.propagate = False
        foreign.setLevel(logging.WARNING)


@contextlib.contextmanager
def logs_above_display() -> Iterator[None]:
    """While a rich Live display redirects `sys.stderr` (it prints what is written there above
    itself), point our log handlers at the redirected stream; they captured the real one."""
    handlers = {h for name in ("dataworks", *_FOREIGN) for h in logging.getLogger(name).handlers
                if isinstance(h, logging.StreamHandler)}
    previous = {h: h.stream for h in handlers}
    for handler in handlers:
        handler.setStream(sys.stderr)
    try:
        yield
    finally:
        for handler, stream in previous.items():
            handler.setStream(stream)


def json_logging() -> bool:
    """True when dataworks logs go out as JSON lines (so nothing else may write to stderr)."""
    return any(isinstance(h.formatter, JsonFormatter)
               for h in logging.getLogger("dataworks").handlers)


def event(logger: logging.Logger, name: str, message: str, level: int = logging.INFO,
          **fields: Any) -> None:
    """Log a structured event; `fields` become top-level keys in JSON logs."""
    logger.log(level, message, extra={"event": name, **fields})
