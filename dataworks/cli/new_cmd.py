"""`dataworks new strategy|generator PATH`: scaffold a plugin file and prove it loads."""

# No `from __future__ import annotations`: typer reads these annotations at runtime.

from enum import Enum
from typing import Annotated

import typer

from dataworks.cli.common import CommonOptions, command_options, err_console
from dataworks.scaffold import new_plugin


class Kind(str, Enum):
    strategy = "strategy"
    generator = "generator"


NEXT_STEPS = {
    "strategy": ("dataworks check {path}",
                 "dataworks migrate --strategy {path} --preview 5   (with your --source-uri "
                 "--source-db --source-collection, or MIG_SOURCE_* in .env_local)",
                 "dataworks migrate --strategy {path}   (and the --target-* flags)"),
    "generator": ("dataworks check {path}",
                  "dataworks generate --source {path} --preview 3 --seed 1",
                  "dataworks generate --source {path} --total 10000 --seed 1"),
}


@command_options
def new(
    kind: Annotated[Kind, typer.Argument(help="What to create: strategy or generator.")],
    path: Annotated[str, typer.Argument(help="File to write (.py); never overwritten.")],
    class_name: Annotated[str | None, typer.Option(
        "--class-name", help="Class name (default: from the file name).")] = None,
    *,
    common: CommonOptions,
) -> None:
    """Write a commented, typed strategy or generator file, then load it to prove it works."""
    made = new_plugin(kind.value, path, class_name)
    typer.echo(f"created {made.path} ({made.kind} {made.ref.class_name}); it loads.")
    if not common.quiet:
        err_console.print("next:", markup=False)
        for step in NEXT_STEPS[made.kind]:
            err_console.print("  " + step.format(path=made.path), markup=False)


def register(app: typer.Typer) -> None:
    app.command("new")(new)
