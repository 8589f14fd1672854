"""A generator's output must be documents: find out from one call, before anything is written.

`encode_batch` (the default one) refuses a `generate_document` / `generate_batch` result
that is not a mapping with a `PluginError` naming the file, the line of the hook and what
came back; `probe()` makes that one call in this process, so `generate`, `generate
--preview` and `dataworks check` report it as one line, exit 2, with no traceback.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from dataworks.errors import PluginError


def require_mapping(generator: Any, value: Any, document_id: int) -> None:
    """Raise a `PluginError` unless `value` (document `document_id`) is a mapping."""
    if isinstance(value, Mapping):
        return
    cls = type(generator)
    hook = "generate_batch" if "generate_batch" in _overridden(cls) else "generate_document"
    where = _where(getattr(cls, hook))
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    raise PluginError(
        f"{where}: {cls.__name__}.{hook} returned {type(value).__name__} {shown} for document "
        f"{document_id}; expected a dict of field names to values",
        hint="return the document as a dict, e.g. {'orderNumber': ..., 'total': ...}",
    )


def probe(generator: Any) -> None:
    """Build document 0 once; a `PluginError` (or the generator's own exception) escapes."""
    generator.encode_batch(0, 1)


def _overridden(cls: type) -> set[str]:
    from dataworks.generators.base import BaseDataGenerator

    return {name for name in ("generate_document", "generate_batch")
            if getattr(cls, name) is not getattr(BaseDataGenerator, name)}


def _where(function: Any) -> str:
    try:
        path = inspect.getsourcefile(function) or "?"
        line = inspect.getsourcelines(function)[1]
    except (OSError, TypeError):
        return "generator"
    return f"{path}:{line}"
