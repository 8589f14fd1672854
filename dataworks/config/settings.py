"""Settings: command line > environment > `.env_local` (or --env-file) > profile > built-in.

`load_settings()` is the one way in; it returns a validated `Settings` and turns every
validation problem into a `SettingsError` that names the environment variable to fix.
`describe_settings()` says where each value came from, for `dataworks config show`.
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic import (
    AliasChoices,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from dataworks.config.envfile import key_lines, warn_unknown_keys
from dataworks.config.profiles import DEFAULT_PROFILE, PROFILE_NAMES, PROFILES, ProfileName
from dataworks.config.uri import UriError, mask_uri, parse_connection_string
from dataworks.errors import SettingsError

DEFAULT_ENV_FILE = ".env_local"
_active_profile: ContextVar[str] = ContextVar("dataworks_profile", default=DEFAULT_PROFILE)


def _env(*names: str) -> Any:
    """Field argument: the environment names a setting is read from, first one canonical."""
    return AliasChoices(*names)


class Settings(BaseSettings):
    """Every setting DataWorks reads. Field names are the env names in lower case."""

    model_config = SettingsConfigDict(
        case_sensitive=False, extra="ignore", populate_by_name=True, env_file=None
    )

    profile: ProfileName = Field(DEFAULT_PROFILE, validation_alias=_env("FRAMEWORK_PROFILE"))
    # field -> what the user set it with (the flag typed, or the environment name used);
    # filled by load_settings, read through `name_for`
    _given_as: dict[str, str] = PrivateAttr(default_factory=dict)

    # How hard to work (profile-driven).
    write_workers: int = Field(2, gt=0, validation_alias=_env("FRAMEWORK_WRITE_WORKERS"))
    generation_workers: int = Field(
        1, gt=0, validation_alias=_env("FRAMEWORK_GENERATION_WORKERS")
    )
    max_insert_workers: int = Field(
        2, gt=0, validation_alias=_env("FRAMEWORK_MAX_INSERT_WORKERS")
    )
    parallel_cursors: int = Field(2, gt=0, validation_alias=_env("FRAMEWORK_PARALLEL_CURSORS"))
    checkpoint_interval: int = Field(
        50_000, gt=0, validation_alias=_env("FRAMEWORK_CHECKPOINT_INTERVAL")
    )

    # Generation target.
    gen_db_connection_string: str = Field(
        "mongodb://127.0.0.1:27017/", validation_alias=_env("GEN_DB_CONNECTION_STRING")
    )
    gen_db_name: str = Field("dataworks", validation_alias=_env("GEN_DB_NAME"))
    gen_db_collection: str = Field("service_orders", validation_alias=_env("GEN_DB_COLLECTION"))
    gen_batch_size: int = Field(1_000, gt=0, validation_alias=_env("GEN_BATCH_SIZE"))
    gen_total_documents: int = Field(10_000, ge=0, validation_alias=_env("GEN_TOTAL_DOCUMENTS"))
    gen_db_max_pool_size: int = Field(10, gt=0, validation_alias=_env("GEN_DB_MAX_POOL_SIZE"))
    gen_db_min_pool_size: int = Field(0, ge=0, validation_alias=_env("GEN_DB_MIN_POOL_SIZE"))
    gen_db_max_idle_time_ms: int | None = Field(
        None, gt=0, validation_alias=_env("GEN_DB_MAX_IDLE_TIME_MS")
    )

    # Migration source (falls back to the generation target: that is what gets migrated).
    mig_source_db_connection_string: str | None = Field(
        None,
        validation_alias=_env(
            "MIG_SOURCE_DB_CONNECTION_STRING", "FRAMEWORK_SOURCE_DB_CONNECTION_STRING"
        ),
    )
    mig_source_db_name: str | None = Field(
        None, validation_alias=_env("MIG_SOURCE_DB_NAME", "FRAMEWORK_SOURCE_DB_NAME")
    )
    mig_source_db_collection: str | None = Field(
        None,
        validation_alias=_env("MIG_SOURCE_DB_COLLECTION", "FRAMEWORK_SOURCE_DB_COLLECTION"),
    )
    mig_source_max_pool_size: int = Field(
        10, gt=0, validation_alias=_env("MIG_SOURCE_MAX_POOL_SIZE", "FRAMEWORK_SOURCE_MAX_POOL_SIZE")
    )
    mig_source_min_pool_size: int = Field(
        0, ge=0, validation_alias=_env("MIG_SOURCE_MIN_POOL_SIZE", "FRAMEWORK_SOURCE_MIN_POOL_SIZE")
    )
    mig_source_max_idle_time_ms: int | None = Field(
        None,
        gt=0,
        validation_alias=_env(
            "MIG_SOURCE_MAX_IDLE_TIME_MS", "FRAMEWORK_SOURCE_MAX_IDLE_TIME_MS"
        ),
    )

    # Migration target.
    mig_target_db_connection_string: str | None = Field(
        None,
        validation_alias=_env(
            "MIG_TARGET_DB_CONNECTION_STRING", "FRAMEWORK_TARGET_DB_CONNECTION_STRING"
        ),
    )
    mig_target_db_name: str | None = Field(
        None, validation_alias=_env("MIG_TARGET_DB_NAME", "FRAMEWORK_TARGET_DB_NAME")
    )
    mig_target_db_collection: str | None = Field(
        None,
        validation_alias=_env("MIG_TARGET_DB_COLLECTION", "FRAMEWORK_TARGET_DB_COLLECTION"),
    )
    mig_batch_size: int = Field(
        1_000, gt=0, validation_alias=_env("MIG_BATCH_SIZE", "FRAMEWORK_BATCH_SIZE")
    )
    mig_parallel_collections: int = Field(
        2, gt=0, validation_alias=_env("MIG_PARALLEL_COLLECTIONS")
    )
    # Request units per second each Cosmos DB side may spend (None: no cap).
    mig_ru_per_second: float | None = Field(
        None, gt=0, validation_alias=_env("MIG_RU_PER_SECOND")
    )  # collections of a database run copied at once (they share the insert workers)
    # Processes that run a strategy's `transform` (0: in the migration process itself).
    mig_transform_workers: int = Field(
        default_factory=lambda: os.cpu_count() or 2, ge=0,
        validation_alias=_env("MIG_TRANSFORM_WORKERS"),
    )
    mig_target_max_pool_size: int = Field(
        10, gt=0, validation_alias=_env("MIG_TARGET_MAX_POOL_SIZE", "FRAMEWORK_TARGET_MAX_POOL_SIZE")
    )
    mig_target_min_pool_size: int = Field(
        0, ge=0, validation_alias=_env("MIG_TARGET_MIN_POOL_SIZE", "FRAMEWORK_TARGET_MIN_POOL_SIZE")
    )
    mig_target_max_idle_time_ms: int | None = Field(
        None,
        gt=0,
        validation_alias=_env(
            "MIG_TARGET_MAX_IDLE_TIME_MS", "FRAMEWORK_TARGET_MAX_IDLE_TIME_MS"
        ),
    )

    # Reliability.
    retry_max_attempts: int = Field(8, gt=0, validation_alias=_env("FRAMEWORK_RETRY_MAX_ATTEMPTS"))
    retry_max_seconds: float = Field(
        300.0, gt=0, validation_alias=_env("FRAMEWORK_RETRY_MAX_SECONDS")
    )
    server_selection_timeout_ms: int = Field(
        10_000, gt=0, validation_alias=_env("FRAMEWORK_SERVER_SELECTION_TIMEOUT_MS")
    )
    throttle_recovery_seconds: float = Field(
        5.0, gt=0, validation_alias=_env("FRAMEWORK_THROTTLE_RECOVERY_SECONDS")
    )  # after throttling halves insert concurrency, quiet seconds before each +1

    @field_validator(
        "gen_db_connection_string",
        "mig_source_db_connection_string",
        "mig_target_db_connection_string",
    )
    @classmethod
    def _check_uri(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not re.match(r"^mongodb(\+srv)?://[^/?#]", value):
            raise ValueError(
                f"'{mask_uri(value)}' is not a MongoDB connection string; "
                "it must start with mongodb:// or mongodb+srv:// followed by a host"
            )
        try:  # the driver's own parser: what it rejects later is rejected here, masked
            parse_connection_string(value)
        except UriError as exc:
            raise ValueError(
                f"'{mask_uri(value)}' is not a valid connection string ({exc}); a user name "
                "or password holding / : @ ? or % must be percent-escaped "
                "(urllib.parse.quote_plus)"
            ) from None
        return value

    @model_validator(mode="after")
    def _fall_back_to_generation_target(self) -> Settings:
        # The generated database is the one that gets migrated.
        if self.mig_source_db_connection_string is None:
            self.mig_source_db_connection_string = self.gen_db_connection_string
        if self.mig_source_db_name is None:
            self.mig_source_db_name = self.gen_db_name
        if self.mig_source_db_collection is None:
            self.mig_source_db_collection = self.gen_db_collection
        return self

    def name_for(self, field: str) -> str:
        """What an error tells the user to check for `field`: the flag they passed, else the
        setting name the value came from (environment or env file), else its canonical
        setting name (a profile or built-in value: the setting to fill in)."""
        return self._given_as.get(field) or env_names(field)[0]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, dotenv_settings, ProfileSource(settings_cls))


class ProfileSource(PydanticBaseSettingsSource):
    """Feeds the active profile's defaults in below `.env_local`."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        value = PROFILES[_active_profile.get()].get(field_name)
        return value, field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(PROFILES[_active_profile.get()])


def env_names(field_name: str) -> list[str]:
    """The environment variable names a field is read from, canonical first."""
    alias = Settings.model_fields[field_name].validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    return [field_name.upper()]


def _known_names() -> dict[str, str]:
    return {name.upper(): field for field in Settings.model_fields for name in env_names(field)}


def _read_env_file(env_file: str | Path | None) -> tuple[Path | None, dict[str, str]]:
    if env_file is None:
        path = Path(DEFAULT_ENV_FILE)
        if not path.is_file():
            return None, {}
    else:
        path = Path(env_file)
        if not path.is_file():
            raise SettingsError(
                f"env file {path} does not exist",
                hint="pass an existing file to --env-file or leave the option out",
            )
    values = {k.upper(): v for k, v in dotenv_values(path).items() if v is not None}
    return path, values


def _bad_value_location(field: str, path: Path | None) -> str:
    """`PATH:LINE: ` when the field's value came from the env file (the environment wins)."""
    if path is None or field not in Settings.model_fields:
        return ""
    names = env_names(field)
    if any(n in os.environ for n in names):
        return ""
    lines = key_lines(path)
    line = next((lines[n] for n in names if n in lines), None)
    return f"{path}:{line}: " if line is not None else ""


def _resolve_profile(
    overrides: dict[str, Any], file_values: dict[str, str]
) -> tuple[str, str]:
    for origin, value in (
        ("command line", overrides.get("profile")),
        ("environment", os.environ.get("FRAMEWORK_PROFILE")),
        ("env file", file_values.get("FRAMEWORK_PROFILE")),
    ):
        if value:
            if value not in PROFILE_NAMES:
                raise SettingsError(
                    f"unknown profile '{value}' (from {origin})",
                    hint=f"use one of: {', '.join(PROFILE_NAMES)}",
                )
            return value, origin
    return DEFAULT_PROFILE, "default"


def load_settings(
    *,
    profile: str | None = None,
    env_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    flags: dict[str, str] | None = None,
) -> Settings:
    """Build validated settings. `overrides` are command-line values keyed by field name;
    `flags` names the flag each came from, so an error about it names that flag."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if profile is not None:
        overrides["profile"] = profile
    path, file_values = _read_env_file(env_file)
    if path is not None:
        warn_unknown_keys(path, key_lines(path), set(_known_names()) | {"FRAMEWORK_PROFILE"})
    chosen, _ = _resolve_profile(overrides, file_values)
    token = _active_profile.set(chosen)
    given = {f: flag for f, flag in (flags or {}).items() if f in overrides}
    try:
        settings = Settings(_env_file=path, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise SettingsError(_explain_validation_error(exc, given, path)) from None
    finally:
        _active_profile.reset(token)
    settings._given_as = _given_as(given, set(overrides), file_values)
    return settings


# Migration source fields that fall back to the generation target's when unset.
_FALLBACKS = {
    "mig_source_db_connection_string": "gen_db_connection_string",
    "mig_source_db_name": "gen_db_name",
    "mig_source_db_collection": "gen_db_collection",
}


def _given_as(flags: dict[str, str], overridden: set[str],
              file_values: dict[str, str]) -> dict[str, str]:
    """{field: the flag typed, or the environment / env-file name its value came from}, for
    the fields the user set; a source field left unset names the generation setting it
    fell back to, when the user set that one."""
    given = dict(flags)
    for field in Settings.model_fields:
        if field in given or field in overridden:  # a value from code, not a flag: canonical
            continue
        names = env_names(field)
        used = next((n for n in names if n in os.environ), None) or next(
            (n for n in names if n in file_values), None)
        if used is not None:
            given[field] = used
    for field, generation in _FALLBACKS.items():
        if field not in given and field not in overridden and generation in given:
            given[field] = given[generation]
    return given


def _explain_validation_error(exc: ValidationError, flags: dict[str, str],
                              env_file: Path | None = None) -> str:
    problems = []
    for error in exc.errors():
        location = error.get("loc") or ()
        field = str(location[0]) if location else ""
        name = _field_for_alias(field)
        label = env_names(name)[0] if name in Settings.model_fields else field or "settings"
        label = flags[name] if name in flags else (
            f"{_bad_value_location(name, env_file)}setting {label}")
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        given = error.get("input")
        shown = "" if given is None or "connection" in name else f" (got {given!r})"
        problems.append(f"{label}: {message}{shown}")
    return "; ".join(problems)


def _field_for_alias(name: str) -> str:
    if name in Settings.model_fields:
        return name
    return _known_names().get(name.upper(), name)


@dataclass(frozen=True)
class SettingOrigin:
    name: str  # canonical environment name
    value: Any
    origin: str


def describe_settings(
    settings: Settings,
    *,
    env_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> list[SettingOrigin]:
    """Each setting, its effective value (passwords masked) and where it came from."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    path, file_values = _read_env_file(env_file)
    profile_values = PROFILES[settings.profile]
    rows = []
    for field in Settings.model_fields:
        names = env_names(field)
        origin = "built-in default"
        if field in overrides:
            origin = "command line"
        elif any(n in os.environ for n in names):
            origin = f"environment {next(n for n in names if n in os.environ)}"
        elif any(n in file_values for n in names):
            origin = f"{path} {next(n for n in names if n in file_values)}"
        elif field in profile_values:
            origin = f"profile {settings.profile}"
        elif field.startswith("mig_source_db_"):
            origin = f"fallback from {field.replace('mig_source_db_', 'GEN_DB_').upper()}"
        value = getattr(settings, field)
        if isinstance(value, str) and "connection_string" in field:
            value = mask_uri(value)
        rows.append(SettingOrigin(names[0], value, origin))
    return rows
