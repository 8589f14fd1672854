"""Which spelling of a flag the user typed, so an error names that one.

`--insert-workers` and `--workers` are one option; click's errors name both
("'--insert-workers' / '--workers'"). `main()` records the command line here, and errors
about a value pick the spelling that was actually on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any

_ARGS: ContextVar[tuple[str, ...]] = ContextVar("dataworks_args", default=())


def remember_args(args: Iterable[str]) -> None:
    _ARGS.set(tuple(args))


def typed(opts: Iterable[str]) -> str | None:
    """The first of `opts` that is on the command line (`--opt value` or `--opt=value`)."""
    args = _ARGS.get()
    for opt in opts:
        if any(a == opt or a.startswith(f"{opt}=") for a in args):
            return opt
    return None


def typed_flag(param: Any) -> str | None:
    """The spelling of click parameter `param` the user typed, if any."""
    if param is None:
        return None
    return typed([*getattr(param, "opts", ()), *getattr(param, "secondary_opts", ())])


def flags_for(command_params: dict[str, str]) -> dict[str, str]:
    """{settings field: flag typed} for `{settings field: click parameter name}`, only for
    the parameters given on the command line."""
    try:  # typer >= 0.17 vendors click
        from typer._click.globals import get_current_context
    except ImportError:  # pragma: no cover - older typer with click installed
        from click import get_current_context  # type: ignore[no-redef]

    ctx = get_current_context(silent=True)
    if ctx is None:
        return {}
    by_name = {p.name: p for p in ctx.command.params}
    found = {}
    for field, name in command_params.items():
        flag = typed_flag(by_name.get(name))
        if flag is not None:
            found[field] = flag
    return found
