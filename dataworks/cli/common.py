"""Options every command takes, and the wrapper that maps errors to exit codes.

`@command_options` appends `--profile --env-file --quiet --debug --log-format` to a typer
command's signature and hands the command a `CommonOptions`; the command body runs inside
`run_cli`, so a `DataWorksError` becomes one line on stderr and its exit code.
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pymongo.errors import PyMongoError
from rich.console import Console

from dataworks.config.settings import Settings, load_settings
from dataworks.config.uri import mask_secrets
from dataworks.errors import DataWorksError
from dataworks.monitoring.logs import configure_logging, event

F = TypeVar("F", bound=Callable[..., Any])
err_console = Console(stderr=True, highlight=False, soft_wrap=True)
log = logging.getLogger("dataworks")


class LogFormat(str, Enum):
    text = "text"
    json = "json"


@dataclass(frozen=True)
class CommonOptions:
    profile: str | None = None
    env_file: Path | None = None
    quiet: bool = False
    debug: bool = False
    log_format: LogFormat = LogFormat.text

    def settings(self, *, params: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings with command-line `overrides` (keyed by settings field). `params` maps a
        field to the command's parameter name so errors name the flag the user typed (the
        six connection options are known already)."""
        from dataworks.cli.endpoint_options import ENDPOINT_FIELDS
        from dataworks.cli.flags import flags_for

        known = {field: name for name, (_, field, _) in ENDPOINT_FIELDS.items()}
        return load_settings(profile=self.profile, env_file=self.env_file, overrides=overrides,
                             flags=flags_for({**known, **(params or {})}))


_COMMON_PARAMETERS = [
    inspect.Parameter(
        "profile",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            str | None,
            typer.Option(
                "--profile",
                help="Settings profile: dev, data-ingest or data-migration "
                "(default: FRAMEWORK_PROFILE, else dev).",
                rich_help_panel="Common options",
            ),
        ],
    ),
    inspect.Parameter(
        "env_file",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            Path | None,
            typer.Option(
                "--env-file",
                help="Read settings from this file instead of ./.env_local.",
                rich_help_panel="Common options",
            ),
        ],
    ),
    inspect.Parameter(
        "quiet",
        inspect.Parameter.KEYWORD_ONLY,
        default=False,
        annotation=Annotated[
            bool,
            typer.Option("--quiet", "-q", help="Only errors and the final summary.",
                         rich_help_panel="Common options"),
        ],
    ),
    inspect.Parameter(
        "debug",
        inspect.Parameter.KEYWORD_ONLY,
        default=False,
        annotation=Annotated[
            bool,
            typer.Option("--debug", help="Show tracebacks and debug logs.",
                         rich_help_panel="Common options"),
        ],
    ),
    inspect.Parameter(
        "log_format",
        inspect.Parameter.KEYWORD_ONLY,
        default=LogFormat.text,
        annotation=Annotated[
            LogFormat,
            typer.Option("--log-format", help="text for people, json for one object per line.",
                         rich_help_panel="Common options"),
        ],
    ),
]
_COMMON_NAMES = {p.name for p in _COMMON_PARAMETERS}


def command_options(func: F) -> F:
    """Add the common options to a command that takes `common: CommonOptions`."""
    signature = inspect.signature(func)
    own = [p for name, p in signature.parameters.items() if name != "common"]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        common = CommonOptions(**{name: kwargs.pop(name) for name in _COMMON_NAMES})
        configure_logging(
            fmt=common.log_format.value, quiet=common.quiet, debug=common.debug
        )
        return run_cli(common, lambda: func(*args, common=common, **kwargs))

    wrapper.__signature__ = signature.replace(parameters=own + _COMMON_PARAMETERS)  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def run_cli(common: CommonOptions, body: Callable[[], Any]) -> Any:
    try:
        return body()
    except DataWorksError as exc:
        if common.debug:
            err_console.print_exception(show_locals=False)
        log.debug("command failed", exc_info=common.debug)
        _print_error(common, mask_secrets(str(exc)), exc.exit_code, type(exc).__name__)
        raise typer.Exit(exc.exit_code) from None
    except PyMongoError as exc:
        if common.debug:
            err_console.print_exception(show_locals=False)
        _print_error(common, f"database error: {mask_secrets(str(exc))}", 1, type(exc).__name__)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise typer.Exit(130) from None


def _print_error(common: CommonOptions, message: str, exit_code: int, kind: str) -> None:
    """One line for people, or (--log-format json) one `error` event like every other line."""
    if common.log_format is LogFormat.json:
        event(log, "error", message, level=logging.ERROR, exit_code=exit_code, error_type=kind)
    else:
        err_console.print(f"[bold red]error:[/] {message}", markup=True)


def with_env(text: str, name: str) -> str:
    """Help text that names the environment variable a flag overrides (typer would read the
    variable itself if given `envvar=`; settings already do, with the right precedence)."""
    return f"{text} (env: {name})"


def output_console() -> Console:
    """stdout console; off a terminal (pipes, CI logs) wide enough that tables do not wrap."""
    if sys.stdout.isatty():
        return Console(soft_wrap=True)
    return Console(soft_wrap=True, width=160)
