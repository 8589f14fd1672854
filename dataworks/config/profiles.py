"""Profile defaults: the middle layer between built-in defaults and `.env_local`.

A profile only changes how hard the tool works, never where it points.
"""

from __future__ import annotations

import os
from typing import Any, Literal, get_args

ProfileName = Literal["dev", "data-ingest", "data-migration"]
PROFILE_NAMES: tuple[str, ...] = get_args(ProfileName)
DEFAULT_PROFILE: ProfileName = "dev"

_CPUS = os.cpu_count() or 2

PROFILES: dict[str, dict[str, Any]] = {
    # Small batches and few workers: quick feedback on a laptop.
    "dev": {
        "write_workers": 2,
        "generation_workers": 1,
        "max_insert_workers": 2,
        "parallel_cursors": 2,
        "checkpoint_interval": 10_000,
        "gen_batch_size": 500,
        "gen_total_documents": 10_000,
        "mig_batch_size": 500,
        "gen_db_max_pool_size": 10,
        "mig_source_max_pool_size": 10,
        "mig_target_max_pool_size": 10,
    },
    # High-speed generation: every core builds documents, several writers insert them.
    "data-ingest": {
        "write_workers": 4,
        "generation_workers": _CPUS,
        "max_insert_workers": 4,
        "parallel_cursors": 2,
        "checkpoint_interval": 50_000,
        "gen_batch_size": 2_000,
        "gen_total_documents": 1_000_000,
        "mig_batch_size": 1_000,
        "gen_db_max_pool_size": 50,
        "mig_source_max_pool_size": 20,
        "mig_target_max_pool_size": 50,
    },
    # High-speed, stable migration: 1,000-document batches (Cosmos DB's write batch limit),
    # parallel cursors over _id ranges, idle connections recycled before Azure's 4-minute
    # load-balancer cut.
    "data-migration": {
        "write_workers": 4,
        "generation_workers": 1,
        "max_insert_workers": 8,
        "parallel_cursors": 4,
        "checkpoint_interval": 50_000,
        "gen_batch_size": 1_000,
        "gen_total_documents": 1_000_000,
        "mig_batch_size": 1_000,
        "gen_db_max_pool_size": 50,
        "mig_source_max_pool_size": 20,
        "mig_target_max_pool_size": 50,
        "mig_source_max_idle_time_ms": 120_000,
        "mig_target_max_idle_time_ms": 120_000,
    },
}
