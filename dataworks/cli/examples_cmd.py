"""`dataworks examples copy DIR`: the example generator, template and strategies, from the
installed package (a wheel or pipx install has no repository to look in)."""

# No `from __future__ import annotations`: typer reads these annotations at runtime.

from typing import Annotated

import typer

from dataworks.cli.common import CommonOptions, command_options
from dataworks.examples_copy import copy_examples

examples_app = typer.Typer(help="The example generator, template and strategies.",
                           no_args_is_help=True)


@examples_app.command("copy")
@command_options
def copy(folder: Annotated[str, typer.Argument(help="Folder to write them into (created if "
                                                    "missing; files are never overwritten).")],
         *, common: CommonOptions) -> None:
    """Write the volvo generator, the JSON template and the example strategies into FOLDER."""
    written = copy_examples(folder)
    for path in written:
        typer.echo(f"wrote {path}")
    if not common.quiet:
        typer.echo(f"next: dataworks generate --source {folder}/generators/volvo_generator.py "
                   "--preview 2")


def register(app: typer.Typer) -> None:
    app.add_typer(examples_app, name="examples")
