"""`dataworks new strategy|generator PATH`: write a starting file, then prove it loads.

Like Alembic's `generate_revision`: render a template (stdlib `string.Template`, files in
`dataworks/templates/*.tmpl`), refuse to overwrite anything, then load the new file with
the same loader the engines use, so a scaffold that does not work is caught here, not in
the middle of a migration.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

from dataworks.checking import BASES, PluginKind
from dataworks.errors import UserError
from dataworks.plugins import PluginRef, load_plugin

SUFFIX = {"strategy": "Strategy", "generator": "Generator"}


@dataclass(frozen=True)
class Scaffolded:
    path: Path
    ref: PluginRef
    kind: PluginKind


def class_name_for(path: Path, kind: PluginKind) -> str:
    """`orders_cleanup.py` -> `OrdersCleanupStrategy` (or `...Generator`)."""
    words = [w for w in re.split(r"[^0-9A-Za-z]+", path.stem) if w]
    name = "".join(w[:1].upper() + w[1:] for w in words) or "My"
    if name[0].isdigit():
        name = "My" + name
    suffix = SUFFIX[kind]
    if not name.endswith(suffix):
        name += suffix
    return name


def render(kind: PluginKind, path: Path, class_name: str) -> str:
    text = resources.files("dataworks").joinpath("templates", f"{kind}.py.tmpl").read_text("utf-8")
    return Template(text).substitute(
        class_name=class_name, path=path.as_posix(), name=path.stem,
    )


def new_plugin(kind: PluginKind, path: str | Path, class_name: str | None = None) -> Scaffolded:
    """Write a commented, typed `kind` file at `path` and load it; never overwrite."""
    if kind not in BASES:
        raise UserError(f"unknown plugin kind {kind!r}: use strategy or generator")
    target = Path(path)
    if target.suffix == "":
        target = target.with_suffix(".py")
    if target.suffix != ".py":
        raise UserError(f"{target}: a {kind} file must end in .py")
    name = class_name or class_name_for(target, kind)
    if not name.isidentifier() or keyword.iskeyword(name):
        raise UserError(f"{name!r} is not a valid Python class name")
    if target.exists():
        raise UserError(f"{target} already exists; refusing to overwrite it",
                        hint="choose another path, or delete the file first")
    target.parent.mkdir(parents=True, exist_ok=True)
    text = render(kind, target, name)
    try:
        with target.open("x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        raise UserError(f"{target} already exists; refusing to overwrite it") from None
    _, ref = load_plugin(f"{target}:{name}", BASES[kind], kind=kind)
    return Scaffolded(target, ref, kind)
