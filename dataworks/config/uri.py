"""Connection strings, read with PyMongo's own parser.

Everything that needs a host, a database or an option from a URI goes through
`parse_connection_string`, so the text is split exactly as the driver splits it (an `@` in
`appName=@acct@`, an escaped `/` in a password). `mask_uri` and `mask_secrets` are the one
way a connection string is shown: user and password removed, sensitive options masked.

`mongodb+srv://` strings are kept as given (one name, no DNS lookup): PyMongo's
`parse_uri` validates the text first and only then resolves SRV records; we take the first
step only (`_validate_uri`, which `parse_uri` itself calls), so parsing never needs DNS.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from urllib.parse import quote, quote_plus, unquote_plus

from pymongo.errors import ConfigurationError, InvalidURI
from pymongo.uri_parser import parse_uri
from pymongo.uri_parser_shared import _validate_uri

DEFAULT_PORT = 27017
MASK = "****"
SRV_SCHEME = "mongodb+srv://"
_ALWAYS_SECRET = {"authmechanismproperties", "tlscertificatekeyfilepassword"}
_SECRET_WORDS = ("password", "secret", "token", "key")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_URI_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]+")
_OPTION = re.compile(r"(?P<sep>^|[?&;])(?P<key>[^=&;?]+)=(?P<value>[^&;]*)")


class UriError(ValueError):
    """Not a connection string PyMongo accepts; the message holds no part of it."""


@dataclass(frozen=True)
class ParsedUri:
    srv: bool
    hosts: tuple[tuple[str, int | None], ...]  # lower case; default port filled unless SRV
    username: str | None
    password: str | None
    database: str | None
    options: dict[str, str] = field(default_factory=dict)  # as written, values unescaped

    def host_list(self) -> list[str]:
        return [_host_text(host, port) for host, port in self.hosts]

    def host_key(self) -> str:
        """Hosts, lower case, default port filled, sorted: the same server spelled the same
        way whatever the order of the seed list. SRV names keep their scheme."""
        hosts = ",".join(sorted(self.host_list()))
        return f"{SRV_SCHEME}{hosts}" if self.srv else hosts

    def option(self, name: str) -> str | None:
        for key, value in self.options.items():
            if key.lower() == name.lower():
                return value
        return None


def parse_connection_string(uri: str) -> ParsedUri:
    """Split `uri` as the driver does (no DNS). Raises `UriError` without echoing secrets."""
    try:
        if uri.startswith(SRV_SCHEME):
            result = _validate_uri(uri, DEFAULT_PORT, validate=False, warn=True)
        else:
            result = parse_uri(uri, DEFAULT_PORT, validate=False, warn=True)
    except (InvalidURI, ConfigurationError, ValueError, TypeError) as exc:
        _remember_fallback_secrets(uri)
        raise UriError(_scrub_known(str(exc))) from None
    options = {str(k): str(v) for k, v in dict(result["options"]).items()}
    parsed = ParsedUri(
        srv=uri.startswith(SRV_SCHEME),
        hosts=tuple((str(h).lower(), p) for h, p in result["nodelist"]),
        username=result["username"],
        password=result["password"],
        database=result["database"],
        options=options,
    )
    _remember(parsed)
    return parsed


def is_secret_option(name: str) -> bool:
    lowered = name.lower()
    return lowered in _ALWAYS_SECRET or any(word in lowered for word in _SECRET_WORDS)


def mask_uri(uri: str) -> str:
    """The connection string without user and password, sensitive options masked.

    `mongodb://u:p@h:1/db?authMechanismProperties=AWS_SESSION_TOKEN:x` ->
    `mongodb://****@h:1/db?authMechanismProperties=****`. A string the driver cannot parse
    (an unescaped `/` in a password) loses everything up to the last `@` that can end a
    user-info part, and its options are masked the same way.
    """
    match = _SCHEME.match(uri)
    if match is None:
        return uri
    scheme, rest = match.group(), uri[match.end():]
    try:
        parsed = parse_connection_string(uri) if scheme.lower().startswith("mongodb") \
            else None
    except UriError:
        parsed = None
    if parsed is not None:
        # split where the driver split it: "?" first, then "/", then the last "@"
        host_plus_path, sep, opts = rest.partition("?")
        host_part, slash, path = host_plus_path.partition("/")
        hosts = host_part.rpartition("@")[2]
        credentials = f"{MASK}@" if "@" in host_part else ""
        return f"{scheme}{credentials}{hosts}{slash}{path}{sep}{_mask_options(opts)}"
    return scheme + _mask_unparsed(rest)


def _mask_unparsed(rest: str) -> str:
    query = rest.find("?")
    head = rest if query < 0 else rest[:query]
    at = head.rfind("@")
    if at < 0:
        at = rest.rfind("@")  # a "?" inside the password, or "@" only in options: hide more
    if at >= 0:
        rest = f"{MASK}@{rest[at + 1:]}"
    host_part, sep, opts = rest.partition("?")
    return host_part + sep + _mask_options(opts)


def _mask_options(opts: str) -> str:
    def mask(match: re.Match[str]) -> str:
        if is_secret_option(unquote_plus(match["key"])):
            return f"{match['sep']}{match['key']}={MASK}"
        return match.group()

    return _OPTION.sub(mask, opts)


def mask_secrets(text: str) -> str:
    """Every connection string in `text` masked, and every secret seen in a parsed
    connection string (password, token, key password) replaced wherever it appears, in
    any of the spellings a message might quote it in."""
    return _scrub_known(_URI_IN_TEXT.sub(lambda m: mask_uri(m.group()), text))


def _scrub_known(text: str) -> str:
    for secret in _known_secrets():
        if secret in text:
            text = text.replace(secret, MASK)
    return text


# -- secrets seen so far: masked in any text, not only inside a URI ---------------------------

_SECRETS: set[str] = set()
_LOCK = threading.Lock()
_MIN_SECRET = 3  # shorter values would mask ordinary words and numbers


def _known_secrets() -> list[str]:
    with _LOCK:
        return sorted(_SECRETS, key=len, reverse=True)  # longest first: no partial leftovers


def remember_secret(value: str | None) -> None:
    if not value or len(value) < _MIN_SECRET:
        return
    forms = {value, quote_plus(value), quote(value, safe=""), unquote_plus(value)}
    with _LOCK:
        _SECRETS.update(f for f in forms if len(f) >= _MIN_SECRET)


def _remember(parsed: ParsedUri) -> None:
    remember_secret(parsed.password)
    for key, value in parsed.options.items():
        if is_secret_option(key):
            remember_secret(value)
            for part in value.split(","):  # AWS_SESSION_TOKEN:xyz,SERVICE_NAME:...
                remember_secret(part.partition(":")[2])


def _remember_fallback_secrets(uri: str) -> None:
    """A string the driver rejects may still hold a password: remember what looks like one
    (after the first `:` of the user-info) so that error messages quoting it get masked."""
    match = _SCHEME.match(uri)
    if match is None:
        return
    rest = uri[match.end():]
    query = rest.find("?")
    head = rest if query < 0 else rest[:query]
    at = head.rfind("@")
    if at < 0:
        at = rest.rfind("@")
    if at >= 0:
        userinfo = rest[:at]
        remember_secret(userinfo.partition(":")[2] or userinfo)
    for opt in _OPTION.finditer(rest.partition("?")[2]):
        if is_secret_option(unquote_plus(opt["key"])):
            remember_secret(opt["value"])
            remember_secret(unquote_plus(opt["value"]))


def _host_text(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"
