#!/usr/bin/env python3
"""`python flexible_generator.py ARGS` is exactly `dataworks generate ARGS`."""

from dataworks.cli import run_verb

if __name__ == "__main__":
    run_verb("generate")
