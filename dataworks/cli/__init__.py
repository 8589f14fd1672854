"""The `dataworks` command line: a thin shell over `dataworks.commands`.

Each verb lives in its own module and registers itself on `app`; this module only builds the
app and the entry point.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from dataworks import __version__
from dataworks.cli import (
    check_cmd,
    checkpoints_cmd,
    config_cmd,
    generate_cmd,
    indexes_cmd,
    migrate_cmd,
    new_cmd,
    verify_cmd,
)

# show_locals=False: local variables in tracebacks would print connection strings.
app = typer.Typer(
    name="dataworks",
    help="Generate test data into, and migrate collections between, MongoDB-API databases.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
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
               check_cmd, checkpoints_cmd):
    module.register(app)


def main(argv: list[str] | None = None) -> None:
    app(args=argv if argv is not None else sys.argv[1:], prog_name="dataworks")


def run_verb(verb: str) -> None:
    """Entry for `flexible_*.py`: `python flexible_migrate.py ARGS` == `dataworks migrate ARGS`."""
    main([verb, *sys.argv[1:]])
