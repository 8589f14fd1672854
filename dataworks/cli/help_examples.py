"""Two or three examples at the end of every command's `--help`, ready to copy.

They use the dev servers' default address (`scripts/dev-server start` prints the real one)
and the examples that `dataworks examples copy DIR` writes.
"""

from __future__ import annotations

from typing import Any

import typer

DEV = "mongodb://127.0.0.1:27017/"

EXAMPLES: dict[str, list[tuple[str, str]]] = {
    "generate": [
        ("10,000 volvo service orders into dataworks.orders",
         f"dataworks generate --source examples/generators/volvo_generator.py --total 10000 "
         f"--target-uri {DEV} --target-db dataworks --target-collection orders"),
        (("the same, with 2 generation processes and 4 concurrent inserts; run it again "
          "after Ctrl-C to continue to exactly --total"),
         "dataworks generate --source examples/generators/volvo_generator.py --total 10000 "
         "--generation-workers 2 --insert-workers 4"),
        ("look at three documents first; nothing is written",
         "dataworks generate --source examples/templates/service_order_template.json "
         "--preview 3 --seed 1"),
    ],
    "migrate": [
        ("copy one collection; run it again after an interruption to resume",
         f"dataworks migrate --source-uri {DEV} --source-db dataworks "
         "--source-collection orders --target-uri mongodb://127.0.0.1:27018/ "
         "--target-db dataworks"),
        ("see what a strategy changes in the first 5 documents; nothing is written",
         "dataworks migrate --strategy examples/strategies/volvo_strategy.py --preview 5"),
        ("start again from empty, and compare every document at the end",
         "dataworks migrate --force-from-start --drop-target --verify hash"),
    ],
    "verify": [
        ("compare every document byte for byte", "dataworks verify --mode hash"),
        ("a random sample of 2,000, with the strategy the migration used",
         "dataworks verify --mode sample --sample-size 2000 --strategy my_strategy.py"),
    ],
    "new": [
        ("a strategy to edit", "dataworks new strategy strategies/my_strategy.py"),
        ("a generator to edit", "dataworks new generator generators/my_generator.py"),
    ],
    "check": [
        ("every problem in a strategy file at once", "dataworks check my_strategy.py"),
        ("as JSON, for an editor or CI", "dataworks check my_generator.py --json"),
    ],
    "checkpoints list": [
        ("runs saved on the target (dataworks_meta.checkpoints)", "dataworks checkpoints list"),
        ("runs saved in files", "dataworks checkpoints list --store file:checkpoints/"),
    ],
    "checkpoints show": [
        ("one run's saved state", "dataworks checkpoints show RUN_ID"),
    ],
    "checkpoints delete": [
        ("forget a run (its documents stay on the target)",
         "dataworks checkpoints delete RUN_ID"),
    ],
    "throttle": [
        ("give a running migration 2,000 RU/s on each Cosmos DB side",
         "dataworks throttle migrate_orders_1a2b3c4d5e6f --ru-per-second 2000"),
        ("a run that keeps its checkpoints in a file",
         "dataworks throttle RUN_ID --ru-per-second 500 --checkpoint-store file:ckpt.json"),
    ],
    "config show": [
        ("every setting, its value and where it came from", "dataworks config show"),
        ("with another env file and profile",
         "dataworks config show --env-file prod.env --profile data-migration"),
    ],
    "indexes compare": [
        ("what the target lacks", "dataworks indexes compare"),
    ],
    "indexes copy": [
        ("copy the source's indexes to the target", "dataworks indexes copy"),
    ],
    "examples copy": [
        ("the volvo generator, the template and the example strategies",
         "dataworks examples copy examples"),
    ],
}


def epilog(name: str) -> str | None:
    """The examples as typer renders an epilog (paragraphs split on blank lines)."""
    items = EXAMPLES.get(name)
    if not items:
        return None
    paragraphs = ["[bold]Examples[/]"]
    for what, command in items:
        paragraphs.append(f"[dim]# {what}[/]\n{command}")
    return "\n\n".join(paragraphs)


def install(app: typer.Typer) -> None:
    """Attach the examples to every registered command (and sub-command)."""
    _attach(app, "")


def _attach(app: Any, prefix: str) -> None:
    for info in app.registered_commands:
        name = f"{prefix}{info.name or info.callback.__name__}"
        info.epilog = info.epilog or epilog(name)
    for group in app.registered_groups:
        _attach(group.typer_instance, f"{prefix}{group.name} ")
