from __future__ import annotations

import pytest

from dataworks.config import describe_settings, load_settings, mask_uri
from dataworks.errors import SettingsError

ENV_NAMES = [
    "FRAMEWORK_PROFILE", "GEN_BATCH_SIZE", "MIG_BATCH_SIZE", "FRAMEWORK_MAX_INSERT_WORKERS",
    "GEN_DB_CONNECTION_STRING", "GEN_DB_NAME", "MIG_SOURCE_DB_NAME",
    "FRAMEWORK_SOURCE_DB_NAME", "MIG_TARGET_DB_CONNECTION_STRING",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env_local


def test_profile_defaults_apply():
    assert load_settings(profile="dev").mig_batch_size == 500
    assert load_settings(profile="data-migration").max_insert_workers == 8


def test_precedence_cli_over_env_over_file_over_profile(monkeypatch, tmp_path):
    env_file = tmp_path / "custom.env"
    env_file.write_text("MIG_BATCH_SIZE=111\nGEN_BATCH_SIZE=222\nFRAMEWORK_MAX_INSERT_WORKERS=3\n")
    monkeypatch.setenv("GEN_BATCH_SIZE", "333")
    s = load_settings(profile="data-migration", env_file=env_file,
                      overrides={"max_insert_workers": 5})
    assert s.mig_batch_size == 111  # file beats profile
    assert s.gen_batch_size == 333  # env beats file
    assert s.max_insert_workers == 5  # command line beats file
    assert s.parallel_cursors == 4  # profile beats built-in


def test_env_local_is_read_by_default(tmp_path):
    (tmp_path / ".env_local").write_text("FRAMEWORK_PROFILE=data-ingest\nGEN_DB_NAME=fromfile\n")
    s = load_settings()
    assert s.profile == "data-ingest" and s.gen_db_name == "fromfile"


def test_source_falls_back_to_generation_target(monkeypatch):
    monkeypatch.setenv("GEN_DB_NAME", "gen")
    s = load_settings()
    assert s.mig_source_db_name == "gen"
    assert s.mig_source_db_connection_string == s.gen_db_connection_string


def test_legacy_framework_aliases(monkeypatch):
    monkeypatch.setenv("FRAMEWORK_SOURCE_DB_NAME", "legacy")
    assert load_settings().mig_source_db_name == "legacy"


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"profile": "prod"}, "unknown profile 'prod'"),
        ({"overrides": {"gen_batch_size": 0}}, "GEN_BATCH_SIZE"),
        ({"overrides": {"gen_db_connection_string": "postgres://x"}}, "GEN_DB_CONNECTION_STRING"),
        ({"env_file": "missing.env"}, "missing.env does not exist"),
    ],
)
def test_bad_settings_name_the_setting(kwargs, expected):
    with pytest.raises(SettingsError, match=expected):
        load_settings(**kwargs)


def test_mask_uri_hides_password():
    assert mask_uri("mongodb://u:p%40ss@h:1/db?x=1") == "mongodb://****@h:1/db?x=1"
    assert mask_uri("mongodb+srv://u:pw@cluster.example.net") == "mongodb+srv://****@cluster.example.net"
    assert mask_uri("mongodb://h:1/") == "mongodb://h:1/"


def test_describe_settings_reports_origin_and_masks(monkeypatch):
    monkeypatch.setenv("MIG_TARGET_DB_CONNECTION_STRING", "mongodb://u:topsecret@h/")
    s = load_settings(profile="data-migration")
    rows = {r.name: r for r in describe_settings(s, overrides={"profile": "data-migration"})}
    assert rows["MIG_TARGET_DB_CONNECTION_STRING"].value == "mongodb://****@h/"
    assert rows["MIG_TARGET_DB_CONNECTION_STRING"].origin.startswith("environment")
    assert rows["FRAMEWORK_MAX_INSERT_WORKERS"].origin == "profile data-migration"
    assert rows["FRAMEWORK_PROFILE"].origin == "command line"
    assert "topsecret" not in repr(rows)


def test_env_local_example_documents_every_setting():
    from pathlib import Path

    from dataworks.config.settings import Settings, env_names

    text = (Path(__file__).resolve().parents[2] / ".env_local.example").read_text()
    for field in Settings.model_fields:
        assert f"#{env_names(field)[0]}=" in text, f"{env_names(field)[0]} is not documented"


# -- what an error tells the user to check: the flag passed, else the setting used -----------

_SOURCE_URI = "mig_source_db_connection_string"


@pytest.fixture
def no_connection_env(monkeypatch):
    for prefix in ("MIG_SOURCE_DB_", "FRAMEWORK_SOURCE_DB_", "MIG_TARGET_DB_", "GEN_DB_"):
        for part in ("CONNECTION_STRING", "NAME", "COLLECTION"):
            monkeypatch.delenv(prefix + part, raising=False)


def test_a_value_given_by_flag_names_the_flag(no_connection_env, monkeypatch):
    monkeypatch.setenv("MIG_SOURCE_DB_CONNECTION_STRING", "mongodb://env/")  # the flag wins
    s = load_settings(overrides={_SOURCE_URI: "mongodb://flag/"},
                      flags={_SOURCE_URI: "--source-uri"})
    assert s.name_for(_SOURCE_URI) == "--source-uri"


def test_a_value_from_the_environment_names_the_variable_used(no_connection_env, monkeypatch):
    monkeypatch.setenv("FRAMEWORK_SOURCE_DB_CONNECTION_STRING", "mongodb://env/")  # old alias
    monkeypatch.setenv("MIG_TARGET_DB_NAME", "t")
    s = load_settings()
    assert s.name_for(_SOURCE_URI) == "FRAMEWORK_SOURCE_DB_CONNECTION_STRING"
    assert s.name_for("mig_target_db_name") == "MIG_TARGET_DB_NAME"


def test_a_value_from_the_env_file_names_its_key(no_connection_env, tmp_path):
    (tmp_path / ".env_local").write_text("MIG_SOURCE_DB_COLLECTION=orders\n")
    assert load_settings().name_for("mig_source_db_collection") == "MIG_SOURCE_DB_COLLECTION"


def test_a_profile_or_default_value_names_the_setting(no_connection_env):
    s = load_settings(profile="dev")
    assert s.name_for(_SOURCE_URI) == "MIG_SOURCE_DB_CONNECTION_STRING"
    assert s.name_for("mig_batch_size") == "MIG_BATCH_SIZE"


def test_a_source_left_unset_names_the_generation_setting_it_fell_back_to(
        no_connection_env, monkeypatch):
    monkeypatch.setenv("GEN_DB_NAME", "gen")
    s = load_settings()
    assert s.name_for("mig_source_db_name") == "GEN_DB_NAME"
    assert s.name_for("mig_source_db_collection") == "MIG_SOURCE_DB_COLLECTION"  # not set


def test_endpoints_carry_the_names_to_check(no_connection_env, monkeypatch):
    from dataworks.core.endpoints import source_endpoint, target_endpoint

    monkeypatch.setenv("MIG_SOURCE_DB_NAME", "src")
    s = load_settings(overrides={"mig_target_db_connection_string": "mongodb://t/"},
                      flags={"mig_target_db_connection_string": "--target-uri"})
    assert source_endpoint(s).names.db == "MIG_SOURCE_DB_NAME"
    assert source_endpoint(s).names.uri == "MIG_SOURCE_DB_CONNECTION_STRING"
    assert target_endpoint(s).names.uri == "--target-uri"
