"""Benchmarks: `python -m bench` (migration and generation against the server's ceiling and
mongodump | mongorestore); bench_generate.py and bench_verify.py are standalone scripts."""
