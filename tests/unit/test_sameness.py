"""Same-server detection that spelling cannot fool (addresses only; the UUID check runs
against real servers in tests/integration/test_same_collection.py)."""

from __future__ import annotations

import socket

import pytest

from dataworks.core.sameness import may_share_a_server


@pytest.mark.parametrize(("a", "b"), [
    ("mongodb://127.0.0.1:27018/", "mongodb://localhost:27018/"),
    ("mongodb://127.0.0.1:27018/", "mongodb://127.0.0.2:27018/"),
    ("mongodb://[::1]:27018/", "mongodb://localhost:27018"),
    ("mongodb://LOCALHOST", "mongodb://127.0.0.1:27017/"),
    ("mongodb://db.example.invalid", "mongodb://db.example.invalid:27017/?appName=x"),
    ("mongodb://u:p@db.example.invalid:1,other.invalid:2/", "mongodb://other.invalid:2"),
    (f"mongodb://{socket.gethostname()}:27018/", "mongodb://127.0.0.1:27018/"),
    ("mongodb://0.0.0.0:27018/", "mongodb://localhost:27018/"),
    ("mongodb+srv://u:p@cluster0.example.invalid/", "mongodb+srv://cluster0.EXAMPLE.invalid/"),
])
def test_same_server_in_other_spellings(a, b):
    assert may_share_a_server(a, b)
    assert may_share_a_server(b, a)


@pytest.mark.parametrize(("a", "b"), [
    ("mongodb://127.0.0.1:27018/", "mongodb://127.0.0.1:27019/"),
    ("mongodb://localhost", "mongodb://localhost:27018"),
    ("mongodb://db.example.invalid", "mongodb://db2.example.invalid"),
])
def test_different_servers(a, b):
    assert not may_share_a_server(a, b)
