"""
The performance benchmark suite behind `make bench` and `make bench-smoke`.

One module per concern: `scale` (the full and smoke sizes), `database` (the benchmark's
own PostgreSQL database), `dataset` (the bulk builder of realistic events), one module
per group of measurements (`pages`, `recording`, `delivery`, `commands`), `stats` and
`report` (the markdown table and docs/benchmarks.md), and `runner`, which ties them
together for `python -m bench` (__main__.py), which runs with settings.py.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository
