"""Load user plugin files (strategies, generators) by path and check them.

Rules (shared by `migrate`, `generate`, `check` and worker processes):
- `PATH` or `PATH:ClassName`; the file is loaded in isolation under a unique module name
  (`dataworks_user_<stem>_<hash8>`), registered in `sys.modules` *before* it runs so
  dataclasses and pickling work, and removed again if loading fails. `sys.path` is not touched.
- Exactly one subclass of the expected base class must be defined in the file, unless a
  class name is given.
- Every problem becomes a `PluginError` whose message starts with `file:line:`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from dataworks.errors import PluginError

T = TypeVar("T")


@dataclass(frozen=True)
class PluginRef:
    """What a worker process needs to load the same class again."""

    path: str
    class_name: str

    def __str__(self) -> str:
        return f"{self.path}:{self.class_name}"


def split_spec(spec: str) -> tuple[Path, str | None]:
    """`path/to/file.py:ClassName` -> (path, "ClassName"); the class part is optional."""
    head, sep, tail = spec.rpartition(":")
    if sep and tail.isidentifier() and head:
        return Path(head), tail
    return Path(spec), None


def module_name_for(path: Path) -> str:
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    stem = "".join(c if c.isalnum() else "_" for c in path.stem)
    return f"dataworks_user_{stem}_{digest}"


def load_module(path: Path, *, kind: str = "plugin") -> ModuleType:
    """Execute a user file as a fresh module; errors point at the user's line."""
    path = path.expanduser()
    if not path.is_file():
        raise PluginError(
            f"{path}: {kind} file does not exist",
            hint="check the path; it is relative to the current directory",
        )
    if path.suffix != ".py":
        raise PluginError(f"{path}: a {kind} file must be a .py file")
    resolved = path.resolve()
    name = module_name_for(resolved)
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:  # pragma: no cover - only for odd file systems
        raise PluginError(f"{path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[name]
        line = exc.lineno or 0
        raise PluginError(f"{path}:{line}: syntax error: {exc.msg}") from None
    except BaseException as exc:  # noqa: BLE001 - any failure of user code at import time
        del sys.modules[name]
        line = _user_line(exc, resolved)
        raise PluginError(
            f"{path}:{line}: {type(exc).__name__} while loading the {kind} file: {exc}"
        ) from exc
    return module


def _user_line(exc: BaseException, path: Path) -> int:
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if Path(frame.filename).resolve() == path:
            return frame.lineno or 0
    return 0


def find_class(module: ModuleType, base: type[T], class_name: str | None, path: Path) -> type[T]:
    """The one subclass of `base` defined in `module` (or the one named)."""
    kind = base.__name__
    if class_name is not None:
        cls = getattr(module, class_name, None)
        if cls is None:
            raise PluginError(f"{path}: no class named {class_name}")
        if not (inspect.isclass(cls) and issubclass(cls, base)):
            raise PluginError(f"{path}:{_line_of(cls)}: {class_name} is not a subclass of {kind}")
        return cls
    found = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, base)
        and obj is not base
        and obj.__module__ == module.__name__
        and not getattr(obj, "__abstract_plugin__", False)
    ]
    if not found:
        raise PluginError(
            f"{path}: no subclass of dataworks.{kind} found",
            hint=f"define `class MyPlugin({kind}):` in the file",
        )
    if len(found) > 1:
        names = ", ".join(sorted(c.__name__ for c in found))
        raise PluginError(
            f"{path}: several subclasses of {kind} ({names})",
            hint=f"name one: {path}:{found[0].__name__}",
        )
    return found[0]


def _line_of(obj: Any) -> int:
    try:
        return inspect.getsourcelines(obj)[1]
    except (OSError, TypeError):
        return 0


def check_hooks(cls: type, base: type) -> list[str]:
    """Problems with overridden hooks: wrong parameters, or sync where async is required.

    The base class lists its hooks in `__hooks__` as {name: must_be_async}. Returns messages
    of the form `file:line: ...`, all at once so `dataworks check` can show every problem.
    """
    problems: list[str] = []
    path = inspect.getsourcefile(cls) or "?"
    for hook, must_be_async in getattr(base, "__hooks__", {}).items():
        override = cls.__dict__.get(hook)
        if override is None:
            continue
        line = _line_of(override)
        if not callable(override):
            problems.append(f"{path}:{line}: {cls.__name__}.{hook} must be a method")
            continue
        expected = inspect.signature(getattr(base, hook))
        actual = inspect.signature(override)
        if not _compatible(expected, actual):
            problems.append(
                f"{path}:{line}: {cls.__name__}.{hook}{actual} does not match "
                f"the hook's signature {hook}{expected}"
            )
        is_async = inspect.iscoroutinefunction(override) or inspect.isasyncgenfunction(override)
        if must_be_async and not is_async:
            problems.append(
                f"{path}:{line}: {cls.__name__}.{hook} must be declared `async def`"
            )
    return problems


def _compatible(expected: inspect.Signature, actual: inspect.Signature) -> bool:
    """Can `actual` be called the way the engine calls `expected`?"""
    params = list(actual.parameters.values())
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    wanted = [
        p for p in expected.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    required = [p for p in positional if p.default is p.empty]
    if len(positional) < len(wanted) or len(required) > len(wanted):
        return False
    has_var_kw = any(p.kind is p.VAR_KEYWORD for p in params)
    names = {p.name for p in params}
    for p in expected.parameters.values():
        if p.kind is p.KEYWORD_ONLY and p.name not in names and not has_var_kw:
            return False
    return not any(
        p.kind is p.KEYWORD_ONLY and p.default is p.empty and p.name not in expected.parameters
        for p in params
    )


def load_plugin(spec: str | PluginRef, base: type[T], *, kind: str) -> tuple[type[T], PluginRef]:
    """Load, find and check a plugin class; raise one `PluginError` listing every problem."""
    if isinstance(spec, PluginRef):
        path, class_name = Path(spec.path), spec.class_name
    else:
        path, class_name = split_spec(spec)
    module = load_module(path, kind=kind)
    cls = find_class(module, base, class_name, path)
    problems = check_hooks(cls, base)
    if problems:
        raise PluginError("; ".join(problems))
    return cls, PluginRef(str(path.resolve()), cls.__name__)
