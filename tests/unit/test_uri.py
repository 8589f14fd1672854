"""Connection strings read with PyMongo's parser: hosts, identity and masking."""

from __future__ import annotations

from urllib.parse import quote_plus

import pytest

from dataworks.config.uri import mask_secrets, mask_uri, parse_connection_string
from dataworks.core.clients import Endpoint
from dataworks.migrations.identity import run_id_for

KEY = "Ab/c+d=e@f:g=="  # the characters a raw base64 key or a pasted password holds
TOKEN = "IQoJb3JpZ2luX2VjE/AWS+tok=="
PORTAL = ("mongodb://{user}:{key}@{acct}.mongo.cosmos.azure.com:10255/?ssl=true&replicaSet="
          "globaldb&retrywrites=false&maxIdleTimeMS=120000&appName=@{acct}@")


def portal(acct: str, key: str = quote_plus(KEY)) -> str:
    return PORTAL.format(user=acct, key=key, acct=acct)


def test_portal_string_hosts_come_from_the_driver_parser():
    parsed = parse_connection_string(portal("staging"))
    assert parsed.host_list() == ["staging.mongo.cosmos.azure.com:10255"]
    assert parsed.password == KEY and parsed.option("replicaSet") == "globaldb"
    assert Endpoint(portal("staging"), "db", "c").host_key() == \
        "staging.mongo.cosmos.azure.com:10255"


def test_two_accounts_with_the_same_namespace_get_two_identities():
    target = Endpoint("mongodb://atlas.example:27017/", "db", "c")
    staging = run_id_for(Endpoint(portal("staging"), "db", "c"), target, "default")
    prod = run_id_for(Endpoint(portal("prod"), "db", "c"), target, "default")
    assert staging != prod


def test_identity_ignores_credentials_and_spelling_of_the_same_hosts():
    target = Endpoint("mongodb://t:1/", "db", "c")
    one = run_id_for(Endpoint("mongodb://a:pw1@H1:27017,h2/", "db", "c"), target, "s")
    two = run_id_for(Endpoint("mongodb://b:pw2@h2:27017,h1/?appName=x", "db", "c"), target, "s")
    assert one == two
    # the identity of a plain single host is what it was before the parser (checkpoints of
    # runs started by earlier versions are still found)
    assert Endpoint("mongodb://127.0.0.1:27018/", "d", "c").host_key() == "127.0.0.1:27018"


def test_srv_is_kept_as_given_without_dns():
    parsed = parse_connection_string("mongodb+srv://u:p@Cluster0.nowhere.invalid/db")
    assert parsed.srv and parsed.host_key() == "mongodb+srv://cluster0.nowhere.invalid"


@pytest.mark.parametrize("uri", [
    portal("acct"),                        # escaped as the URI rules require
    portal("acct", key=KEY.replace("@", "%40").replace(":", "%3A")),  # unescaped "/", "+", "="
    portal("acct", key=KEY),               # everything unescaped
    f"mongodb://u:{quote_plus(KEY)}@h:1/?authMechanism=MONGODB-AWS&authMechanismProperties="
    f"AWS_SESSION_TOKEN:{quote_plus(TOKEN)}",
    f"mongodb://u:{quote_plus(KEY)}@h:1/?authMechanism=MONGODB-AWS&authMechanismProperties="
    f"AWS_SESSION_TOKEN:{TOKEN}",
    f"mongodb://h:1/?tls=true&tlsCertificateKeyFilePassword={quote_plus(KEY)}&apiSecretX=zz9",
    f"mongodb+srv://u:{quote_plus(KEY)}@c.example.net/?x_token={TOKEN}",
    f"http://u:{KEY}@h/",
])
def test_masking_removes_user_password_and_secret_options(uri):
    shown = mask_uri(uri)
    for secret in (KEY, quote_plus(KEY), TOKEN, quote_plus(TOKEN), "zz9", "b/c", "Ab"):
        assert secret not in shown, shown
    # a secret seen in a connection string is masked wherever a message quotes it
    quoted = [s for s in (KEY, TOKEN) if s in uri or quote_plus(s) in uri]
    text = mask_secrets(f"error: could not use {uri} ({' '.join(quoted)})")
    for secret in quoted:
        assert secret not in text and quote_plus(secret) not in text, text
    assert "****" in shown


def test_masking_keeps_what_is_not_secret():
    assert mask_uri(portal("acct")) == (
        "mongodb://****@acct.mongo.cosmos.azure.com:10255/?ssl=true&replicaSet=globaldb"
        "&retrywrites=false&maxIdleTimeMS=120000&appName=@acct@")
    assert mask_uri("mongodb://h:1/db?authMechanismProperties=AWS_SESSION_TOKEN:x&w=1") == \
        "mongodb://h:1/db?authMechanismProperties=****&w=1"
    assert mask_uri("mongodb://localhost") == "mongodb://localhost"
