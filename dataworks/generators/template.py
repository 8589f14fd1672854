"""JSON templates: a sample document whose values may be placeholders, compiled once.

    {
      "orderNumber": "SO-{{ sequence(100000) }}",          text with placeholders inside
      "status": "{{ choice(\"OPEN\", \"CLOSED\") }}",      a whole-string placeholder: typed
      "createdAt": "{{ date(\"2023-01-01\", \"2025-12-31\") }}",
      "total": "{{ decimal(10, 5000, 2) }}",
      "jobs": {"$array": {"code": "{{ digits(6) }}"}, "min": 1, "max": 4},
      "contact": {"$choice": [{"email": "{{ email }}"}, {"phone": "{{ digits(10) }}"}]},
      "country": "SE"                                      plain JSON: a constant
    }

- A string that is exactly one `{{ ... }}` becomes a value of the placeholder's BSON type;
  placeholders inside longer text are rendered into the string.
- `{"$array": ITEM, "min": a, "max": b}`: an array of a..b items built from ITEM.
- `{"$choice": [A, B, ...]}`: one of the sub-templates, picked per document.
- JSON integers become int32 (int64 when they do not fit), other numbers doubles.
- See `dataworks.generators.placeholders` for every placeholder and its arguments.

Compilation turns the template into closures that append BSON bytes; constant parts are
encoded once. Errors name the file and the JSON path (`$.jobs.$array.code`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataworks.errors import TemplateError
from dataworks.generators import bsonfast as bf
from dataworks.generators.base import BaseDataGenerator
from dataworks.generators.placeholders import Ctx, parse_placeholder

Emit = Callable[[Ctx], bytes]
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.S)
_WHOLE = re.compile(r"^\s*\{\{(.*?)\}\}\s*$", re.S)
_DIRECTIVES = ("$array", "$choice")


@dataclass(frozen=True)
class CompiledTemplate:
    path: str
    document: Callable[[Ctx], bytes]  # one encoded document (without `_id` unless set)


def load_template(path: Path) -> CompiledTemplate:
    """Read and compile a template file; every problem is a TemplateError naming the path."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TemplateError(f"{path}: template file does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"{path}: cannot read template ({exc})") from None
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TemplateError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    return compile_template(spec, source=str(path))


def compile_template(spec: Any, *, source: str = "<template>") -> CompiledTemplate:
    if not isinstance(spec, dict):
        raise TemplateError(f"{source}: $: a template must be a JSON object (one document)")
    try:
        body = _compile_fields(spec, "$")
    except _PathError as exc:
        raise TemplateError(f"{source}: {exc.path}: {exc.message}") from None
    return CompiledTemplate(source, _as_document(body))


class _PathError(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path, self.message = path, message


# A compiled field list is a list of parts: bytes (constant) or Emit (varies per document).
Parts = list[bytes | Emit]


def _compile_fields(spec: dict[str, Any], path: str) -> Parts:
    parts: Parts = []
    for name, value in spec.items():
        if name.startswith("$"):
            raise _PathError(f"{path}.{name}", f"unknown directive '{name}' "
                             f"(directives: {', '.join(_DIRECTIVES)}, each alone in its object)")
        if "\x00" in name:
            raise _PathError(path, "field names cannot contain NUL")
        parts.append(_compile_element(name, value, f"{path}.{name}"))
    return _merge(parts)


def _compile_element(name: str, value: Any, path: str) -> bytes | Emit:
    """One element (type byte, key, value) as constant bytes or a per-document function."""
    if isinstance(value, str):
        return _compile_string(name, value, path)
    if isinstance(value, dict):
        directive = [k for k in value if k in _DIRECTIVES]
        if directive:
            return _compile_directive(name, value, directive[0], path)
        inner = _compile_fields(value, path)
        return _wrap(bf.key(bf.T_DOCUMENT, name), inner)
    if isinstance(value, list):
        items = [_compile_element(str(i), item, f"{path}[{i}]") for i, item in enumerate(value)]
        return _wrap(bf.key(bf.T_ARRAY, name), _merge(items))
    try:
        return bf.element(name, _literal(value))
    except Exception as exc:  # noqa: BLE001 - e.g. an integer beyond int64
        raise _PathError(path, f"cannot encode {value!r}: {exc}") from None


def _literal(value: Any) -> Any:
    from bson.int64 import Int64

    if isinstance(value, int) and not isinstance(value, bool) and not -(2**31) <= value < 2**31:
        return Int64(value)
    return value


def _compile_string(name: str, value: str, path: str) -> bytes | Emit:
    whole = _WHOLE.match(value)
    if whole and "{{" not in whole.group(1):
        return _placeholder(whole.group(1), path).element(name)
    pieces = _PLACEHOLDER.split(value)
    if len(pieces) == 1:
        return bf.element(name, value)
    renderers: list[str | Callable[[Ctx], str]] = []
    for i, piece in enumerate(pieces):
        if i % 2 == 0:
            if piece:
                renderers.append(piece)
        else:
            renderers.append(_placeholder(piece, path).text)
    head = bf.key(bf.T_STRING, name)
    string_value = bf.string_value

    def render(ctx: Ctx) -> bytes:
        return head + string_value("".join([r if isinstance(r, str) else r(ctx) for r in renderers]))

    return render


def _placeholder(expression: str, path: str) -> Any:
    try:
        return parse_placeholder(expression)
    except TemplateError as exc:
        raise _PathError(path, exc.message) from None


def _compile_directive(name: str, value: dict[str, Any], directive: str, path: str) -> Emit:
    here = f"{path}.{directive}"
    if directive == "$choice":
        if set(value) != {"$choice"}:
            raise _PathError(path, f"$choice takes no other keys (found {sorted(set(value) - {'$choice'})})")
        options = value["$choice"]
        if not isinstance(options, list) or not options:
            raise _PathError(here, "$choice needs a non-empty list of sub-templates")
        compiled = [_compile_element(name, o, f"{here}[{i}]") for i, o in enumerate(options)]
        emitters = [_constant(c) if isinstance(c, bytes) else c for c in compiled]
        n = len(emitters)
        return lambda ctx: emitters[int(ctx.rand() * n)](ctx)
    extra = set(value) - {"$array", "min", "max"}
    if extra:
        raise _PathError(path, f"$array takes only min and max (found {', '.join(sorted(extra))})")
    lo, hi = value.get("min", 1), value.get("max", value.get("min", 1))
    for key, bound in (("min", lo), ("max", hi)):
        if not isinstance(bound, int) or isinstance(bound, bool) or bound < 0:
            raise _PathError(f"{path}.{key}", f"must be a non-negative integer, not {bound!r}")
    if lo > hi:
        raise _PathError(path, f"$array min {lo} is greater than max {hi}")
    item_spec = value["$array"]
    # Compile the item once per possible position: element keys are "0", "1", ...
    items = [_compile_element(str(i), item_spec, f"{here}") for i in range(hi)] if hi else []
    item_emitters = [_constant(c) if isinstance(c, bytes) else c for c in items]
    head = bf.key(bf.T_ARRAY, name)
    span = hi - lo + 1
    p32 = bf.pack_i32

    def array(ctx: Ctx) -> bytes:
        n = lo + int(ctx.rand() * span)
        body = b"".join([item_emitters[i](ctx) for i in range(n)])
        return head + p32(len(body) + 5) + body + b"\x00"

    return array


def _constant(data: bytes) -> Emit:
    return lambda ctx: data


def _merge(parts: list[bytes | Emit]) -> Parts:
    """Join neighbouring constant parts so each document does as few joins as possible."""
    merged: Parts = []
    for part in parts:
        if isinstance(part, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] = merged[-1] + part
        else:
            merged.append(part)
    return merged


def _wrap(head: bytes, inner: Parts) -> bytes | Emit:
    """A sub-document or array element around compiled parts; constant if they all are."""
    if all(isinstance(p, bytes) for p in inner):
        return head + bf.document(b"".join(inner))  # type: ignore[arg-type]
    body = _as_document(inner)
    return lambda ctx: head + body(ctx)


def _as_document(parts: Parts) -> Callable[[Ctx], bytes]:
    p32 = bf.pack_i32
    if all(isinstance(p, bytes) for p in parts):
        constant = bf.document(b"".join(parts))  # type: ignore[arg-type]
        return lambda ctx: constant
    fixed = [(p if isinstance(p, bytes) else None) for p in parts]
    funcs = [(None if isinstance(p, bytes) else p) for p in parts]
    plan = list(zip(fixed, funcs))

    def document(ctx: Ctx) -> bytes:
        body = b"".join([c if c is not None else f(ctx) for c, f in plan])  # type: ignore[misc]
        return p32(len(body) + 5) + body + b"\x00"

    return document


class TemplateGenerator(BaseDataGenerator):
    """Runs a compiled template; used for `--source file.json`."""

    name = "json-template"

    def __init__(self, template: CompiledTemplate, seed: int | None = None) -> None:
        super().__init__(seed)
        self.template = template
        self.ctx = Ctx(self.random)

    def encode_batch(self, start: int, count: int) -> list[bytes]:
        ctx, build = self.ctx, self.template.document
        out = []
        for index in range(start, start + count):
            ctx.index = index
            out.append(build(ctx))
        return out

    def generate_document(self, document_id: int | None = None) -> dict[str, Any]:
        import bson

        self.ctx.index = document_id or 0
        return bson.decode(self.template.document(self.ctx))
