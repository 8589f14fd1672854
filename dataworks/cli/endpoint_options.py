"""`--source-uri --source-db --source-collection --target-uri --target-db --target-collection`
for every command that talks to both sides (migrate, verify, indexes)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from dataworks.config.settings import env_names

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
        annotation=Annotated[str | None, typer.Option(
            flag, help=f"{text} (env: {env_names(field)[0]})", rich_help_panel=PANEL)],
    )
    for name, (flag, field, text) in ENDPOINT_FIELDS.items()
]


_SOURCE_DBS = inspect.Parameter(
    "source_db",
    inspect.Parameter.KEYWORD_ONLY,
    default=None,
    annotation=Annotated[list[str] | None, typer.Option(
        "--source-db", help="Source database; repeat it (without --source-collection) to copy "
        "every collection of several databases (env: MIG_SOURCE_DB_NAME).",
        rich_help_panel=PANEL)],
)


def endpoint_options(func: F | None = None, *, many_source_dbs: bool = False) -> Any:
    """Add the six connection options; the command receives them as `endpoints`, a dict of
    settings overrides (only the options given). With `many_source_dbs` (migrate),
    `--source-db` may be repeated and the command also receives `source_dbs`, the list."""
    if func is None:
        return lambda f: _with_endpoints(f, many_source_dbs)
    return _with_endpoints(func, many_source_dbs)


def _with_endpoints(func: F, many_source_dbs: bool) -> F:
    signature = inspect.signature(func)
    own = [p for name, p in signature.parameters.items()
           if name not in ("endpoints", "source_dbs")]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if many_source_dbs:
            dbs = list(kwargs["source_db"] or [])
            kwargs["source_db"] = dbs[0] if len(dbs) == 1 else None
            kwargs["source_dbs"] = dbs
        endpoints = {
            ENDPOINT_FIELDS[name][1]: kwargs.pop(name) for name in ENDPOINT_FIELDS
        }
        return func(*args, endpoints={k: v for k, v in endpoints.items() if v}, **kwargs)

    parameters = [_SOURCE_DBS if many_source_dbs and p.name == "source_db" else p
                  for p in _PARAMETERS]

    keyword = [p for p in own if p.kind is p.KEYWORD_ONLY]
    positional = [p for p in own if p.kind is not p.KEYWORD_ONLY]
    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=positional + parameters + keyword
    )
    return wrapper  # type: ignore[return-value]
