"""
The performance benchmark suite behind `make bench` and `make bench-smoke`, run as
`python -m bench` (__main__.py) with its own settings (settings.py). Not an installed
app: product code never imports it.

One module per concern:

- the sizes of a run: `scale` (full and smoke);
- the dataset: `database` (the benchmark's own PostgreSQL database), `dataset` (what it
  holds), `builder` (builds it in stages, or reuses it), `people` and `loader` (write
  its people and its events), `events` (one client's generated history), `processes`
  (the worker processes);
- the measurements: `pages` (#1-#3), `recording` (#4, #5), `delivery` and `wsclient`
  (#6), `commands` (#7, #8), `load` and `loadgen` (#10, the tab under load), timed with
  `stats`;
- the verdict: `goals` (one function a goal of issue 5, and #10 of issue 11), `runner` (the run, in order)
  and `report` (the markdown table and docs/benchmarks.md).
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository
