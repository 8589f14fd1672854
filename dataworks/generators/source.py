"""What `--source PATH` names: a generator plugin (.py) or a JSON template (.json).

A `GeneratorSource` is small and picklable: worker processes receive it and build their own
generator from the file (spawn-safe; nothing but the path crosses the process boundary).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path

from dataworks.errors import PluginError
from dataworks.generators.base import BaseDataGenerator
from dataworks.plugins import PluginRef, load_plugin, split_spec


@dataclass(frozen=True)
class GeneratorSource:
    kind: str  # "plugin" or "template"
    path: str  # absolute
    class_name: str | None = None

    def describe(self) -> str:
        return f"{self.path}:{self.class_name}" if self.class_name else self.path


def resolve_source(spec: str) -> GeneratorSource:
    """Check the file now, in the main process, so mistakes surface before any worker starts."""
    path, _ = split_spec(spec)
    if path.suffix.lower() == ".json":
        from dataworks.generators.template import load_template

        load_template(path)  # raises TemplateError with the JSON path of the problem
        return GeneratorSource("template", str(path.resolve()))
    if path.suffix.lower() != ".py":
        raise PluginError(
            f"{path}: a generator source must be a .py generator file or a .json template"
        )
    cls, ref = load_plugin(spec, BaseDataGenerator, kind="generator")
    return GeneratorSource("plugin", ref.path, ref.class_name)


def build_generator(source: GeneratorSource, seed: int) -> BaseDataGenerator:
    """One generator instance seeded with the run's seed (pools built from it are shared)."""
    if source.kind == "template":
        from dataworks.generators.template import TemplateGenerator, load_template

        return TemplateGenerator(load_template(Path(source.path)), seed=seed)
    assert source.class_name is not None
    cls, _ = load_plugin(PluginRef(source.path, source.class_name), BaseDataGenerator,
                         kind="generator")
    try:
        accepts_seed = "seed" in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        accepts_seed = False
    generator = cls(seed=seed) if accepts_seed else cls()
    if not accepts_seed:
        generator.reseed(seed)
    return generator
