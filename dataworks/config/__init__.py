"""Profile-based settings."""

from dataworks.config.profiles import PROFILE_NAMES, PROFILES
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
