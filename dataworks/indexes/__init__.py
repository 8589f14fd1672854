"""Index copy, comparison and deferred builds (plain async functions; no CLI code here).

    plan_indexes(listing, ts_field=None) -> IndexPlan                 pure translation
    await compare_indexes(source, target) -> IndexComparison
    await copy_indexes(source, target) -> IndexCopyReport
    await defer_indexes(source, target, store) -> DeferredIndexes     before loading
    await build_pending_indexes(target, store) -> IndexCopyReport     after loading / on resume
"""

from dataworks.indexes.compare import IndexComparison, IndexDiff, IndexStatus, diff_indexes
from dataworks.indexes.deferred import (
    DeferredIndexes,
    build_pending_indexes,
    defer_indexes,
    load_pending,
)
from dataworks.indexes.operations import IndexCopyReport, compare_indexes, copy_indexes
from dataworks.indexes.spec import IndexPlan, IndexSpec, SkippedIndex, plan_indexes

__all__ = [
    "DeferredIndexes",
    "IndexComparison",
    "IndexCopyReport",
    "IndexDiff",
    "IndexPlan",
    "IndexSpec",
    "IndexStatus",
    "SkippedIndex",
    "build_pending_indexes",
    "compare_indexes",
    "copy_indexes",
    "defer_indexes",
    "diff_indexes",
    "load_pending",
    "plan_indexes",
]
