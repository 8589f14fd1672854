"""The `dataworks` command line: a thin shell over `dataworks.commands`.

Each verb lives in its own module and registers itself on `app`; this module only builds the
app and the entry point.
"""

from __future__ import annotations

import importlib.machinery
import logging
import sys
from typing import Annotated

import typer

try:  # typer >= 0.17 vendors click
    from typer._click import exceptions as _click_exceptions
except ImportError:  # pragma: no cover - older typer with click installed
    from click import exceptions as _click_exceptions  # type: ignore[no-redef]

from dataworks import __version__
from dataworks.cli import (
    check_cmd,
    checkpoints_cmd,
    config_cmd,
    examples_cmd,
    flags,
    generate_cmd,
    help_examples,
    help_format,
    indexes_cmd,
    migrate_cmd,
    new_cmd,
    throttle_cmd,
    verify_cmd,
)
from dataworks.monitoring.logs import configure_logging, event

help_format.install()

# show_locals=False: local variables in tracebacks would print connection strings.
app = typer.Typer(
    name="dataworks",
    help="Generate test data into, and migrate collections between, MongoDB-API databases.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=True,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dataworks {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Generate test data into, and migrate collections between, MongoDB-API databases."""


for module in (config_cmd, migrate_cmd, generate_cmd, verify_cmd, indexes_cmd, new_cmd,
               check_cmd, checkpoints_cmd, examples_cmd, throttle_cmd):
    module.register(app)
help_examples.install(app)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a mistyped command line gets one line on stderr (what is wrong, where to
    look; a JSON `error` event with --log-format json), not click's boxed usage block, and
    exit code 2."""
    _workers_skip_the_console_script()
    args = argv if argv is not None else sys.argv[1:]
    flags.remember_args(args)
    try:
        code = app(args=args, prog_name="dataworks", standalone_mode=False)
    except _click_exceptions.NoArgsIsHelpError as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except _click_exceptions.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "dataworks"
        _usage_error(args, f"{_named(exc)} (see '{where} --help')", exc.exit_code)
    except _click_exceptions.ClickException as exc:
        _usage_error(args, exc.format_message(), exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def _workers_skip_the_console_script() -> None:
    """Generation and transform workers are spawned processes, and spawn runs the parent's
    main script again in each child (as `__mp_main__`) unless it is a package's `__main__`
    module. The `dataworks` console script is a three-line shim that imports this CLI, so
    each worker imported the whole CLI before its first batch (~0.4 CPU-s and ~25 MB each;
    `python -m dataworks` never did). When `__main__` is such a shim, i.e. it has no spec and
    its `main` is this function, it gets the spec `python -m dataworks` has: spawned
    children then skip it, and import only their own modules, by name."""
    shim = sys.modules.get("__main__")
    if (shim is not None and getattr(shim, "__spec__", None) is None
            and getattr(shim, "main", None) is main):
        shim.__spec__ = importlib.machinery.ModuleSpec("dataworks.__main__", None)


def _named(exc: _click_exceptions.UsageError) -> str:
    """click's message, naming only the spelling of the option that was typed."""
    message = exc.format_message()
    param = getattr(exc, "param", None)
    typed = flags.typed_flag(param)
    if typed is not None and param is not None:
        both = " / ".join(f"'{o}'" for o in [*param.opts, *param.secondary_opts])
        message = message.replace(both, f"'{typed}'")
    return message


def _usage_error(args: list[str], message: str, exit_code: int) -> None:
    if flags.typed(["--log-format"]) and _json_requested(args):
        configure_logging(fmt="json")
        event(logging.getLogger("dataworks"), "error", message, level=logging.ERROR,
              exit_code=exit_code, error_type="UsageError")
    else:
        typer.echo(f"error: {message}", err=True)
    sys.exit(exit_code)


def _json_requested(args: list[str]) -> bool:
    for i, arg in enumerate(args):
        if arg == "--log-format=json" or (arg == "--log-format" and args[i + 1:i + 2] == ["json"]):
            return True
    return False


def run_verb(verb: str) -> None:
    """Entry for `flexible_*.py`: `python flexible_migrate.py ARGS` == `dataworks migrate ARGS`."""
    main([verb, *sys.argv[1:]])
