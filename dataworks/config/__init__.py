"""Profile-based settings."""

from typing import TYPE_CHECKING, Any

from dataworks.config.profiles import PROFILE_NAMES, PROFILES

# Loaded on first use (PEP 562): `dataworks.config.uri` (imported by worker processes
# through `dataworks.core.clients`) must not pull in pydantic and the settings model.
_FROM_SETTINGS = ("Settings", "describe_settings", "env_names", "load_settings", "mask_uri")


def __getattr__(name: str) -> Any:
    if name not in _FROM_SETTINGS:
        raise AttributeError(f"module 'dataworks.config' has no attribute {name!r}")
    from dataworks.config import settings

    value = getattr(settings, name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from dataworks.config.settings import (
        Settings,
        describe_settings,
        env_names,
        load_settings,
        mask_uri,
    )

__all__ = [
    "PROFILES",
    "PROFILE_NAMES",
    "Settings",
    "describe_settings",
    "env_names",
    "load_settings",
    "mask_uri",
]
