"""The server side of SCRAM-SHA-1 as MongoDB speaks it (RFC 5802; the password is first
hashed as md5("user:mongo:password")), for test servers that must check a user and key.

    conversation = ScramSha1Server(users={"acct": "key"})
    server_first = conversation.first(client_first)     # saslStart payload
    server_final = conversation.final(client_final)     # saslContinue payload; bad proof raises
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass, field

ITERATIONS = 10_000


class ScramError(ValueError):
    """Authentication failed: unknown user, bad proof or a malformed message."""


def _fields(message: str) -> dict[str, str]:
    try:
        return dict(part.split("=", 1) for part in message.split(","))
    except ValueError as exc:
        raise ScramError("malformed SCRAM message") from exc


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.digest(key, data, "sha1")


@dataclass
class ScramSha1Server:
    users: dict[str, str]
    salt: bytes = field(default_factory=lambda: os.urandom(16))
    _client_first_bare: str = ""
    _server_first: str = ""
    _nonce: str = ""
    _user: str = ""

    def first(self, client_first: bytes) -> bytes:
        message = client_first.decode()
        if not message.startswith("n,"):
            raise ScramError("channel binding is not supported")
        self._client_first_bare = message.split(",", 2)[2]
        parts = _fields(self._client_first_bare)
        self._user = parts.get("n", "").replace("=2C", ",").replace("=3D", "=")
        if self._user not in self.users:
            raise ScramError("unknown user")
        self._nonce = parts["r"] + base64.b64encode(os.urandom(18)).decode()
        self._server_first = (f"r={self._nonce},s={base64.b64encode(self.salt).decode()},"
                              f"i={ITERATIONS}")
        return self._server_first.encode()

    def final(self, client_final: bytes) -> bytes:
        message = client_final.decode()
        parts = _fields(message)
        if parts.get("r") != self._nonce or "p" not in parts:
            raise ScramError("nonce mismatch")
        without_proof = message[: message.rindex(",p=")]
        auth_message = ",".join([self._client_first_bare, self._server_first,
                                 without_proof]).encode()
        password = hashlib.md5(  # noqa: S324 - MongoDB's SCRAM-SHA-1 password digest
            f"{self._user}:mongo:{self.users[self._user]}".encode()).hexdigest()
        salted = hashlib.pbkdf2_hmac("sha1", password.encode(), self.salt, ITERATIONS)
        client_key = _hmac(salted, b"Client Key")
        signature = _hmac(hashlib.sha1(client_key).digest(), auth_message)
        proof = base64.b64decode(parts["p"])
        recovered = bytes(a ^ b for a, b in zip(proof, signature, strict=False))
        if len(proof) != len(signature) or not hmac.compare_digest(
                hashlib.sha1(recovered).digest(), hashlib.sha1(client_key).digest()):
            raise ScramError("wrong key")
        server_signature = _hmac(_hmac(salted, b"Server Key"), auth_message)
        return b"v=" + base64.b64encode(server_signature)
