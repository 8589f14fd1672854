"""The placeholders of JSON templates: `{{ name }}` or `{{ name(arg, ...) }}`.

Each placeholder is compiled once into an object that packs its BSON value per document
(`value(ctx)` -> encoded bytes of its fixed BSON type) and can render itself as text for
placeholders embedded in a longer string. Arguments are literals (numbers, "strings",
true/false/null); anything else, or a wrong count or range, is a `TemplateError` that names
the JSON path. The list below is the reference (README "Generation" repeats it):

    objectId                      ObjectId
    uuid                          binary subtype 4 (UUID)
    binary(length=16)             binary subtype 0
    int(min=0, max=100)           int32        (alias int32)
    long(min=0, max=10**12)       int64        (alias int64)
    double(min=0, max=1, digits=2)   double, rounded to `digits` decimals
    decimal(min=0, max=1000, places=2)   Decimal128 (alias decimal128)
    bool(p=0.5)                   true with probability p
    null                          null
    string(min=8, max=min)        random letters, length in [min, max]
    digits(n)                     string of n random digits
    choice(a, b, ...)             one of the literal values, keeping its type
    date(start="2020-01-01", end="2025-12-31")   UTC datetime in [start, end]
    sequence(start=1, step=1)     int64 start + step * document index (unique per run)
    firstName, lastName, name, email   from small built-in pools
"""

from __future__ import annotations

import ast
import datetime as dt
import string
from collections.abc import Callable
from typing import Any

from bson.decimal128 import Decimal128

from dataworks.errors import TemplateError
from dataworks.generators import bsonfast as bf


class Ctx:
    """Per-document state the compiled template reads: the random stream and the index."""

    __slots__ = ("random", "rand", "getrandbits", "randbytes", "index")

    def __init__(self, rng: Any) -> None:
        self.random = rng
        self.rand = rng.random
        self.getrandbits = rng.getrandbits
        self.randbytes = rng.randbytes
        self.index = 0


class Placeholder:
    type_byte: int = bf.T_NULL

    def value(self, ctx: Ctx) -> bytes:
        raise NotImplementedError

    def text(self, ctx: Ctx) -> str:
        raise NotImplementedError

    def element(self, name: str) -> Callable[[Ctx], bytes]:
        head = bf.key(self.type_byte, name)
        value = self.value
        return lambda ctx: head + value(ctx)


class _Int(Placeholder):
    def __init__(self, lo: int, hi: int, type_byte: int) -> None:
        self.lo, self.span, self.type_byte = lo, hi - lo + 1, type_byte
        self.pack = bf.pack_i32 if type_byte == bf.T_INT32 else bf.pack_i64

    def draw(self, ctx: Ctx) -> int:
        return self.lo + int(ctx.rand() * self.span)

    def value(self, ctx: Ctx) -> bytes:
        return self.pack(self.lo + int(ctx.rand() * self.span))

    def text(self, ctx: Ctx) -> str:
        return str(self.draw(ctx))


class _Double(Placeholder):
    type_byte = bf.T_DOUBLE

    def __init__(self, lo: float, hi: float, digits: int) -> None:
        self.lo, self.span, self.digits = lo, hi - lo, digits

    def draw(self, ctx: Ctx) -> float:
        return round(self.lo + ctx.rand() * self.span, self.digits)

    def value(self, ctx: Ctx) -> bytes:
        return bf.pack_f64(round(self.lo + ctx.rand() * self.span, self.digits))

    def text(self, ctx: Ctx) -> str:
        return str(self.draw(ctx))


class _Decimal(Placeholder):
    type_byte = bf.T_DECIMAL128

    def __init__(self, lo: float, hi: float, places: int) -> None:
        self.lo, self.hi, self.scale = round(lo * 10**places), round(hi * 10**places), places

    def draw(self, ctx: Ctx) -> str:
        units = self.lo + int(ctx.rand() * (self.hi - self.lo + 1))
        sign = "-" if units < 0 else ""
        whole, frac = divmod(abs(units), 10**self.scale)
        return f"{sign}{whole}.{frac:0{self.scale}d}" if self.scale else f"{sign}{whole}"

    def value(self, ctx: Ctx) -> bytes:
        return Decimal128(self.draw(ctx)).bid

    def text(self, ctx: Ctx) -> str:
        return self.draw(ctx)


class _Bool(Placeholder):
    type_byte = bf.T_BOOL

    def __init__(self, p: float) -> None:
        self.p = p

    def value(self, ctx: Ctx) -> bytes:
        return b"\x01" if ctx.rand() < self.p else b"\x00"

    def text(self, ctx: Ctx) -> str:
        return "true" if ctx.rand() < self.p else "false"


class _Null(Placeholder):
    type_byte = bf.T_NULL

    def value(self, ctx: Ctx) -> bytes:
        return b""

    def text(self, ctx: Ctx) -> str:
        return "null"


class _ObjectId(Placeholder):
    type_byte = bf.T_OBJECTID

    def value(self, ctx: Ctx) -> bytes:
        # A plausible timestamp (2020-2025) followed by 8 random bytes.
        return (1_577_836_800 + ctx.getrandbits(28) % 189_216_000).to_bytes(4, "big") + \
            ctx.randbytes(8)

    def text(self, ctx: Ctx) -> str:
        return self.value(ctx).hex()


class _Uuid(Placeholder):
    type_byte = bf.T_BINARY

    def draw(self, ctx: Ctx) -> bytes:
        raw = bytearray(ctx.randbytes(16))
        raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
        raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
        return bytes(raw)

    def value(self, ctx: Ctx) -> bytes:
        return b"\x10\x00\x00\x00\x04" + self.draw(ctx)

    def text(self, ctx: Ctx) -> str:
        h = self.draw(ctx).hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class _Binary(Placeholder):
    type_byte = bf.T_BINARY

    def __init__(self, length: int) -> None:
        self.length, self.head = length, bf.pack_i32(length) + b"\x00"

    def value(self, ctx: Ctx) -> bytes:
        return self.head + ctx.randbytes(self.length)

    def text(self, ctx: Ctx) -> str:
        return ctx.randbytes(self.length).hex()


class _Text(Placeholder):
    """Any placeholder whose value is a string: encode = length + UTF-8 + NUL."""

    type_byte = bf.T_STRING

    def value(self, ctx: Ctx) -> bytes:
        return bf.string_value(self.text(ctx))


class _Letters(_Text):
    ALPHABET = string.ascii_letters

    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.span = lo, hi - lo + 1

    def text(self, ctx: Ctx) -> str:
        n = self.lo + int(ctx.rand() * self.span)
        raw = ctx.randbytes(n)
        alphabet = self.ALPHABET
        return "".join([alphabet[b % 52] for b in raw])


class _Digits(_Text):
    def __init__(self, n: int) -> None:
        self.n = n

    def text(self, ctx: Ctx) -> str:
        return str(ctx.getrandbits(64) % 10**self.n).zfill(self.n) if self.n <= 19 else \
            "".join(str(b % 10) for b in ctx.randbytes(self.n))


class _Pool(_Text):
    def __init__(self, items: list[str]) -> None:
        self.items = items
        self.encoded = [bf.string_value(i) for i in items]

    def value(self, ctx: Ctx) -> bytes:
        return self.encoded[int(ctx.rand() * len(self.encoded))]

    def text(self, ctx: Ctx) -> str:
        return self.items[int(ctx.rand() * len(self.items))]


class _Email(_Text):
    def text(self, ctx: Ctx) -> str:
        first = FIRST_NAMES[int(ctx.rand() * len(FIRST_NAMES))]
        last = LAST_NAMES[int(ctx.rand() * len(LAST_NAMES))]
        return f"{first}.{last}{int(ctx.rand() * 1000)}@example.com".lower()


class _FullName(_Text):
    def text(self, ctx: Ctx) -> str:
        return f"{FIRST_NAMES[int(ctx.rand() * len(FIRST_NAMES))]} " \
               f"{LAST_NAMES[int(ctx.rand() * len(LAST_NAMES))]}"


class _Choice(Placeholder):
    """One of several literal values; each keeps its own BSON type."""

    def __init__(self, options: list[Any]) -> None:
        self.options = options

    def element(self, name: str) -> Callable[[Ctx], bytes]:
        encoded = [bf.element(name, _bson_literal(o)) for o in self.options]
        n = len(encoded)
        return lambda ctx: encoded[int(ctx.rand() * n)]

    def text(self, ctx: Ctx) -> str:
        return str(self.options[int(ctx.rand() * len(self.options))])


class _Date(Placeholder):
    type_byte = bf.T_DATETIME

    def __init__(self, lo_ms: int, hi_ms: int) -> None:
        self.lo, self.span = lo_ms, hi_ms - lo_ms + 1

    def value(self, ctx: Ctx) -> bytes:
        return bf.pack_i64(self.lo + int(ctx.rand() * self.span))

    def text(self, ctx: Ctx) -> str:
        ms = self.lo + int(ctx.rand() * self.span)
        return (_EPOCH + dt.timedelta(milliseconds=ms)).isoformat(timespec="milliseconds")


class _Sequence(Placeholder):
    type_byte = bf.T_INT64

    def __init__(self, start: int, step: int) -> None:
        self.start, self.step = start, step

    def value(self, ctx: Ctx) -> bytes:
        return bf.pack_i64(self.start + self.step * ctx.index)

    def text(self, ctx: Ctx) -> str:
        return str(self.start + self.step * ctx.index)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
FIRST_NAMES = ["Anna", "Erik", "Maria", "Lars", "Karin", "Johan", "Sofia", "Anders", "Emma",
               "Per", "Lena", "Nils", "Ingrid", "Oskar", "Sara", "Magnus", "James", "Laura"]
LAST_NAMES = ["Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson",
              "Olsson", "Persson", "Svensson", "Berg", "Smith", "Müller", "Jansen", "Brown"]


def _bson_literal(value: Any) -> Any:
    from bson.int64 import Int64

    if isinstance(value, int) and not isinstance(value, bool) and not INT32[0] <= value <= INT32[1]:
        return Int64(value)
    return value


# --- parsing and argument checking ----------------------------------------------------

class _Args:
    """Positional and keyword literal arguments with checks that name the placeholder."""

    def __init__(self, name: str, args: list[Any], kwargs: dict[str, Any]) -> None:
        self.name, self.args, self.kwargs = name, args, kwargs

    def fail(self, message: str) -> TemplateError:
        return TemplateError(f"{self.name}: {message}")

    def get(self, position: int, key: str, default: Any, kind: type | tuple[type, ...]) -> Any:
        if key in self.kwargs:
            value = self.kwargs[key]
        elif position < len(self.args):
            value = self.args[position]
        else:
            value = default
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise self.fail(f"argument '{key}' must be {_kind_name(kind)}, not {value!r}")
        if not isinstance(value, kind):
            raise self.fail(f"argument '{key}' must be {_kind_name(kind)}, not {value!r}")
        return value

    def at_most(self, names: list[str]) -> None:
        if len(self.args) > len(names):
            raise self.fail(f"takes at most {len(names)} arguments ({', '.join(names) or 'none'}), "
                            f"got {len(self.args)}")
        unknown = set(self.kwargs) - set(names)
        if unknown:
            raise self.fail(f"unknown argument(s) {', '.join(sorted(unknown))}")


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join({int: "an integer", float: "a number", str: "a string",
                        bool: "true/false"}.get(k, k.__name__) for k in kinds)


def _range(a: _Args, lo_default: Any, hi_default: Any, kind: Any, bounds: tuple[int, int] | None
           ) -> tuple[Any, Any]:
    lo = a.get(0, "min", lo_default, kind)
    hi = a.get(1, "max", hi_default if hi_default is not None else lo, kind)
    if lo > hi:
        raise a.fail(f"min {lo} is greater than max {hi}")
    if bounds and not (bounds[0] <= lo and hi <= bounds[1]):
        raise a.fail(f"range {lo}..{hi} does not fit in [{bounds[0]}, {bounds[1]}]")
    return lo, hi


def _parse_date(a: _Args, text: str, key: str) -> int:
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise a.fail(f"argument '{key}' is not an ISO date: {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return int((when - _EPOCH).total_seconds() * 1000)


def _make_int(a: _Args, type_byte: int, bounds: tuple[int, int], hi: int) -> Placeholder:
    a.at_most(["min", "max"])
    lo, hi = _range(a, 0, hi, int, bounds)
    return _Int(lo, hi, type_byte)


def _make_double(a: _Args) -> Placeholder:
    a.at_most(["min", "max", "digits"])
    lo, hi = _range(a, 0.0, 1.0, (int, float), None)
    digits = a.get(2, "digits", 2, int)
    return _Double(float(lo), float(hi), digits)


def _make_decimal(a: _Args) -> Placeholder:
    a.at_most(["min", "max", "places"])
    lo, hi = _range(a, 0, 1000, (int, float), None)
    places = a.get(2, "places", 2, int)
    if not 0 <= places <= 30:
        raise a.fail("places must be between 0 and 30")
    return _Decimal(lo, hi, places)


def _make_bool(a: _Args) -> Placeholder:
    a.at_most(["p"])
    p = a.get(0, "p", 0.5, (int, float))
    if not 0 <= p <= 1:
        raise a.fail(f"p must be between 0 and 1, not {p}")
    return _Bool(float(p))


def _make_string(a: _Args) -> Placeholder:
    a.at_most(["min", "max"])
    lo, hi = _range(a, 8, None, int, (0, 1_000_000))
    return _Letters(lo, hi)


def _make_digits(a: _Args) -> Placeholder:
    a.at_most(["n"])
    n = a.get(0, "n", 6, int)
    if not 1 <= n <= 1000:
        raise a.fail("n must be between 1 and 1000")
    return _Digits(n)


def _make_binary(a: _Args) -> Placeholder:
    a.at_most(["length"])
    n = a.get(0, "length", 16, int)
    if not 0 <= n <= 1_000_000:
        raise a.fail("length must be between 0 and 1000000")
    return _Binary(n)


def _make_choice(a: _Args) -> Placeholder:
    if a.kwargs:
        raise a.fail("takes values only, no named arguments")
    if not a.args:
        raise a.fail("needs at least one value")
    for value in a.args:
        if isinstance(value, (list, dict, tuple, set)):
            raise a.fail(f"values must be literals, not {value!r} (use {{\"$choice\": [...]}})")
    return _Choice(list(a.args))


def _make_date(a: _Args) -> Placeholder:
    a.at_most(["start", "end"])
    lo = _parse_date(a, a.get(0, "start", "2020-01-01", str), "start")
    hi = _parse_date(a, a.get(1, "end", "2025-12-31", str), "end")
    if lo > hi:
        raise a.fail("start is after end")
    return _Date(lo, hi)


def _make_sequence(a: _Args) -> Placeholder:
    a.at_most(["start", "step"])
    return _Sequence(a.get(0, "start", 1, int), a.get(1, "step", 1, int))


def _no_args(factory: Callable[[], Placeholder]) -> Callable[[_Args], Placeholder]:
    def make(a: _Args) -> Placeholder:
        a.at_most([])
        return factory()
    return make


FACTORIES: dict[str, Callable[[_Args], Placeholder]] = {
    "objectId": _no_args(_ObjectId),
    "uuid": _no_args(_Uuid),
    "binary": _make_binary,
    "int": lambda a: _make_int(a, bf.T_INT32, INT32, 100),
    "long": lambda a: _make_int(a, bf.T_INT64, INT64, 10**12),
    "double": _make_double,
    "decimal": _make_decimal,
    "bool": _make_bool,
    "null": _no_args(_Null),
    "string": _make_string,
    "digits": _make_digits,
    "choice": _make_choice,
    "date": _make_date,
    "sequence": _make_sequence,
    "firstName": _no_args(lambda: _Pool(FIRST_NAMES)),
    "lastName": _no_args(lambda: _Pool(LAST_NAMES)),
    "name": _no_args(_FullName),
    "email": _no_args(_Email),
}
ALIASES = {"oid": "objectId", "objectid": "objectId", "int32": "int", "int64": "long",
           "decimal128": "decimal", "boolean": "bool", "seq": "sequence"}

_LITERAL_NAMES = {"true": True, "false": False, "null": None}


def parse_placeholder(expression: str) -> Placeholder:
    """`name` or `name(args)` -> a compiled placeholder; raises TemplateError (no path yet)."""
    text = expression.strip()
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError:
        raise TemplateError(f"cannot parse placeholder {{{{ {text} }}}}") from None
    if isinstance(tree, ast.Name):
        name, args, kwargs = tree.id, [], {}
    elif isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name):
        name = tree.func.id
        args = [_literal(node, text) for node in tree.args]
        kwargs = {kw.arg: _literal(kw.value, text) for kw in tree.keywords if kw.arg}
        if any(kw.arg is None for kw in tree.keywords):
            raise TemplateError(f"{{{{ {text} }}}}: **kwargs are not supported")
    else:
        raise TemplateError(f"{{{{ {text} }}}} is not a placeholder: use name or name(args)")
    canonical = ALIASES.get(name, name)
    factory = FACTORIES.get(canonical)
    if factory is None:
        known = ", ".join(sorted(FACTORIES))
        raise TemplateError(f"unknown placeholder '{name}' (known: {known})")
    return factory(_Args(canonical, args, kwargs))


def _literal(node: ast.expr, text: str) -> Any:
    if isinstance(node, ast.Name) and node.id in _LITERAL_NAMES:
        return _LITERAL_NAMES[node.id]
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError):
        raise TemplateError(
            f"{{{{ {text} }}}}: arguments must be literals (numbers, \"strings\", "
            f"true/false/null), not {ast.unparse(node)}"
        ) from None
