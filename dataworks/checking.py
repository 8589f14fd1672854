"""`dataworks check`: every problem in a strategy or generator file at once.

The file is loaded exactly as the engines load it (`dataworks.plugins`), so a file that
passes `check` loads in `migrate` and `generate`. Which base class applies is decided by the
file's classes unless `kind` says. JSON generator templates are checked by the template
compiler (one problem: the first bad placeholder, with its JSON path).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from dataworks.errors import PluginError, TemplateError
from dataworks.generators.base import BaseDataGenerator
from dataworks.migrations.strategy import BaseMigrationStrategy
from dataworks.plugins import CheckResult, Problem, collect_problems, split_spec

PluginKind = Literal["strategy", "generator"]
BASES: dict[str, type] = {"strategy": BaseMigrationStrategy, "generator": BaseDataGenerator}


def check_file(spec: str, kind: PluginKind | None = None) -> CheckResult:
    """Load `PATH[:ClassName]` and return the class found and every problem."""
    path, _ = split_spec(spec)
    if path.suffix.lower() == ".json" and kind != "strategy":
        return _check_template(path)
    bases = [BASES[kind]] if kind else [BaseMigrationStrategy, BaseDataGenerator]
    result = collect_problems(spec, bases, kind=kind or "plugin")
    if result.ok and result.base is BaseDataGenerator:
        result.problems.extend(_first_document_problems(spec, path))
    return result


def _first_document_problems(spec: str, path: Path) -> list[Problem]:
    """Call the generator once, as `generate` does before it writes: what it returns must be
    a document, and it must not raise."""
    import traceback

    from dataworks.generators.probe import probe
    from dataworks.generators.source import build_generator, resolve_source

    try:
        probe(build_generator(resolve_source(spec), 0))
    except PluginError as exc:
        prefix = f"{path.resolve()}:"
        text = exc.message.removeprefix(prefix)
        number, _, rest = text.partition(": ")
        if text != exc.message and number.isdigit():
            return [Problem(str(path), int(number), rest, "runtime")]
        return [Problem(str(path), 1, exc.message, "runtime")]
    except Exception as exc:  # noqa: BLE001 - the user's code raised: report where
        frames = [f for f in traceback.extract_tb(exc.__traceback__)
                  if Path(f.filename).resolve() == path.resolve()]
        line = frames[-1].lineno if frames and frames[-1].lineno else 1
        return [Problem(str(path), line, f"building document 0 raised "
                        f"{type(exc).__name__}: {exc}", "runtime")]
    return []


def kind_of(result: CheckResult) -> str | None:
    """'strategy', 'generator' or 'template' for a checked file (None when unknown)."""
    if result.base is None:
        return "template" if result.path.lower().endswith(".json") and result.ok else None
    return next((k for k, b in BASES.items() if b is result.base), None)


def _check_template(path: Path) -> CheckResult:
    from dataworks.generators.template import load_template

    result = CheckResult(str(path))
    if not path.is_file():
        result.problems.append(Problem(str(path), 1, "template file does not exist", "file"))
        return result
    try:
        load_template(path)
    except TemplateError as exc:
        line, message = _split_location(str(exc), str(path))
        result.problems.append(Problem(str(path), line, message, "syntax"))
    return result


def _split_location(text: str, path: str) -> tuple[int, str]:
    """`PATH:LINE:COL: message` or `PATH: message` -> (line, message)."""
    if text.startswith(path + ":"):
        text = text[len(path) + 1:]
        parts = text.split(":", 2)
        if len(parts) == 3 and parts[0].isdigit() and parts[1].isdigit():
            return int(parts[0]), parts[2].strip()
        return 1, text.strip()
    return 1, text
