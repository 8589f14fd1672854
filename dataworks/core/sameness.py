"""Could the source and the target be the same collection? Decided by what the servers are,
not by how their addresses are spelled.

Two checks, both conservative (when in doubt: "may be the same", and the run is refused):

- before connecting, `may_share_a_server`: every host of each connection string normalised
  (default port 27017, names resolved to addresses, `localhost`, 127.0.0.0/8, `::1` and this
  machine's own addresses folded into one "this machine") and compared as sets;
- once connected, `same_collection`: the collections' UUIDs (`listCollections` `info.uuid`)
  where both servers report one; otherwise the namespace and the address check above.

`127.0.0.1:P` vs `localhost:P`, `host` vs `host:27017`, or a proxy in front of the same
server (different address, same UUID) all count as the same collection.
"""

from __future__ import annotations

import ipaddress
import socket
from functools import lru_cache
from typing import Any

from dataworks.config.uri import DEFAULT_PORT, UriError, parse_connection_string

THIS_MACHINE = "<this machine>"


@lru_cache(maxsize=1)
def _own_addresses() -> frozenset[str]:
    """Addresses this machine answers on (best effort: its names resolved)."""
    found: set[str] = {"0.0.0.0", "::"}
    for name in {socket.gethostname(), socket.getfqdn(), "localhost"}:
        try:
            for info in socket.getaddrinfo(name, None):
                found.add(str(info[4][0]).split("%", 1)[0])
        except OSError:
            continue
    return frozenset(found)


def _is_this_machine(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.is_loopback or ip.is_unspecified:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return _is_this_machine(str(ip.ipv4_mapped))
    return address in _own_addresses()


@lru_cache(maxsize=256)
def _addresses(host: str, port: int) -> frozenset[tuple[str, int]]:
    """Where `host:port` leads: resolved addresses, this machine as one, or the name itself
    when it cannot be resolved (two unresolvable spellings of one name still match)."""
    host = host.lower().strip("[]")
    if host == "localhost" or host.endswith(".localhost"):
        return frozenset({(THIS_MACHINE, port)})
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
        resolved = {str(info[4][0]).split("%", 1)[0] for info in infos}
    except (OSError, UnicodeError):
        resolved = set()
    if not resolved:
        return frozenset({(host, port)})
    return frozenset((THIS_MACHINE if _is_this_machine(a) else a, port) for a in resolved)


def server_addresses(uri: str) -> frozenset[tuple[str, int]]:
    """Every (address, port) a connection string can reach; SRV names stay names."""
    try:
        parsed = parse_connection_string(uri)
    except UriError:
        return frozenset()
    found: set[tuple[str, int]] = set()
    for host, port in parsed.hosts:
        if parsed.srv:
            found.add((f"srv:{host}", 0))
        else:
            found |= _addresses(host, port or DEFAULT_PORT)
    return frozenset(found)


def may_share_a_server(uri_a: str, uri_b: str) -> bool:
    """True when any host of one string can be the same server as a host of the other (or
    when either string cannot be read: never assume "different")."""
    a, b = server_addresses(uri_a), server_addresses(uri_b)
    if not a or not b:
        return True
    return bool(a & b)


async def collection_uuid(database: Any, name: str) -> Any | None:
    """`listCollections` `info.uuid` of a collection, None when the server gives none or the
    collection does not exist."""
    cursor = await database.list_collections(filter={"name": name})
    async for info in cursor:
        uuid = (info.get("info") or {}).get("uuid")
        return uuid
    return None


async def same_collection(source_db: Any, source_name: str, target_db: Any, target_name: str,
                          *, same_namespace: bool, shared_server: bool) -> bool:
    """After connecting: are these the same collection? UUIDs decide when both sides have
    one (a proxy or an alias cannot hide it); otherwise the address check decides."""
    source_uuid = await collection_uuid(source_db, source_name)
    target_uuid = await collection_uuid(target_db, target_name)
    if source_uuid is not None and target_uuid is not None:
        return bool(source_uuid == target_uuid)
    return same_namespace and shared_server
