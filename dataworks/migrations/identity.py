"""A run's identity: the same source, target and strategy give the same run id, so running
the same command again finds its checkpoint and resumes."""

from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path
from typing import Any

from bson import json_util

from dataworks.core.clients import Endpoint


def run_id_for(source: Endpoint, target: Endpoint, strategy_ref: str) -> str:
    """Hosts (without credentials), namespaces and strategy name; never the password."""
    key = json.dumps(
        [source.host_key(), source.namespace, target.host_key(), target.namespace, strategy_ref]
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    safe = "".join(c if c.isalnum() else "_" for c in target.namespace)[:40]
    return f"migrate_{safe}_{digest}"


def config_hash(query: dict[str, Any], projection: dict[str, Any] | None) -> str:
    """What the readers select; a checkpoint is only valid for the same selection."""
    text = json_util.dumps([query, projection], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def strategy_code_hash(strategy_cls: type) -> str | None:
    """A fingerprint of the file that defines a user's strategy (None for DataWorks' own),
    so a resumed run can tell that the transform was edited in between."""
    if strategy_cls.__module__.startswith("dataworks."):
        return None
    try:
        source_file = inspect.getsourcefile(strategy_cls)
        return hashlib.sha256(Path(source_file or "").read_bytes()).hexdigest()[:16]
    except (OSError, TypeError):
        return None
