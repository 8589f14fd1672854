"""Endpoints (URI, database, collection, pool settings) derived from settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dataworks.core.clients import Endpoint, SettingNames
from dataworks.errors import SettingsError

if TYPE_CHECKING:  # annotations only: worker processes import this without pydantic
    from dataworks.config.settings import Settings

# Where a user fixes each side's address, for errors raised where the endpoint is not at hand.
SOURCE_SETTING = "MIG_SOURCE_DB_CONNECTION_STRING"
TARGET_SETTING = "MIG_TARGET_DB_CONNECTION_STRING"
GENERATION_SETTING = "GEN_DB_CONNECTION_STRING"


def _names(settings: Settings, prefix: str) -> SettingNames:
    """Errors about this side name the flag the user passed, else the setting they set."""
    return SettingNames(uri=settings.name_for(f"{prefix}_connection_string"),
                        db=settings.name_for(f"{prefix}_name"),
                        collection=settings.name_for(f"{prefix}_collection"))


def generation_endpoint(settings: Settings) -> Endpoint:
    return Endpoint(
        uri=settings.gen_db_connection_string,
        db=settings.gen_db_name,
        collection=settings.gen_db_collection,
        max_pool_size=settings.gen_db_max_pool_size,
        min_pool_size=settings.gen_db_min_pool_size,
        max_idle_time_ms=settings.gen_db_max_idle_time_ms,
        server_selection_timeout_ms=settings.server_selection_timeout_ms,
        names=_names(settings, "gen_db"),
    )


def source_endpoint(settings: Settings) -> Endpoint:
    assert settings.mig_source_db_connection_string is not None  # filled by the fallback
    return Endpoint(
        uri=settings.mig_source_db_connection_string,
        db=settings.mig_source_db_name or settings.gen_db_name,
        collection=settings.mig_source_db_collection or settings.gen_db_collection,
        max_pool_size=settings.mig_source_max_pool_size,
        min_pool_size=settings.mig_source_min_pool_size,
        max_idle_time_ms=settings.mig_source_max_idle_time_ms,
        server_selection_timeout_ms=settings.server_selection_timeout_ms,
        names=_names(settings, "mig_source_db"),
    )


def target_endpoint(settings: Settings) -> Endpoint:
    if not settings.mig_target_db_connection_string:
        raise SettingsError(
            "no migration target is set",
            hint="set MIG_TARGET_DB_CONNECTION_STRING (or pass --target-uri)",
        )
    source = source_endpoint(settings)
    return Endpoint(
        uri=settings.mig_target_db_connection_string,
        db=settings.mig_target_db_name or source.db,
        collection=settings.mig_target_db_collection or source.collection,
        max_pool_size=settings.mig_target_max_pool_size,
        min_pool_size=settings.mig_target_min_pool_size,
        max_idle_time_ms=settings.mig_target_max_idle_time_ms,
        server_selection_timeout_ms=settings.server_selection_timeout_ms,
        names=_names(settings, "mig_target_db"),
    )
