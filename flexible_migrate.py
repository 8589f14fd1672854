#!/usr/bin/env python3
"""`python flexible_migrate.py ARGS` is exactly `dataworks migrate ARGS`."""

from dataworks.cli import run_verb

if __name__ == "__main__":
    run_verb("migrate")
