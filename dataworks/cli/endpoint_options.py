"""`--source-uri --source-db --source-collection --target-uri --target-db --target-collection`
for every command that talks to both sides (migrate, verify, indexes)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

F = TypeVar("F", bound=Callable[..., Any])
PANEL = "Connections (override settings)"

# option name -> settings field it overrides
ENDPOINT_FIELDS = {
    "source_uri": ("--source-uri", "mig_source_db_connection_string", "Source connection string."),
    "source_db": ("--source-db", "mig_source_db_name", "Source database."),
    "source_collection": ("--source-collection", "mig_source_db_collection", "Source collection."),
    "target_uri": ("--target-uri", "mig_target_db_connection_string", "Target connection string."),
    "target_db": ("--target-db", "mig_target_db_name", "Target database."),
    "target_collection": ("--target-collection", "mig_target_db_collection", "Target collection."),
}

_PARAMETERS = [
    inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[str | None, typer.Option(flag, help=text, rich_help_panel=PANEL)],
    )
    for name, (flag, _, text) in ENDPOINT_FIELDS.items()
]


def endpoint_options(func: F) -> F:
    """Add the six connection options; the command receives them as `endpoints`, a dict of
    settings overrides (only the options given)."""
    signature = inspect.signature(func)
    own = [p for name, p in signature.parameters.items() if name != "endpoints"]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        endpoints = {
            ENDPOINT_FIELDS[name][1]: kwargs.pop(name) for name in ENDPOINT_FIELDS
        }
        return func(*args, endpoints={k: v for k, v in endpoints.items() if v}, **kwargs)

    keyword = [p for p in own if p.kind is p.KEYWORD_ONLY]
    positional = [p for p in own if p.kind is not p.KEYWORD_ONLY]
    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=positional + _PARAMETERS + keyword
    )
    return wrapper  # type: ignore[return-value]
