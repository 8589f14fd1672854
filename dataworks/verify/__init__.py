"""Prove a target equals its source: counts, every document byte for byte, or a sample.

    await verify(source, target, "hash", transform=None, partitions=None) -> VerifyReport

Plain async functions; the CLI (`dataworks verify`) and `migrate --verify` both call them.
"""

from dataworks.verify.hashcompare import Transform
from dataworks.verify.partitions import VerifyPartition
from dataworks.verify.report import VerifyMode, VerifyReport
from dataworks.verify.run import verify

__all__ = ["Transform", "VerifyMode", "VerifyPartition", "VerifyReport", "verify"]
