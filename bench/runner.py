"""One benchmark run: build or reuse the dataset, measure #1-#10, and report against the goals."""

import time
from collections.abc import Callable

import redis
from django.conf import settings

from bench import ROOT, builder, goals, loader
from bench.database import BenchmarkSetupError
from bench.dataset import Dataset
from bench.report import Line, document, save, table
from bench.scale import Scale

DOCS = ROOT / "docs" / "benchmarks.md"
SMOKE_REPORT = ROOT / "var" / "benchmarks-smoke.md"

# The goal each measurement reports, its "#N" title prefix.
MEASUREMENTS = [
    ("#8 verify_activity_log over the whole table (also proves the dataset's chains valid), then since its anchor",
     goals.verify_speed),
    ("#1 Activity Log tab, first page", goals.first_page),
    ("#2 Load older, deep in the whale's log", goals.load_older),
    ("#3 Django admin changelist", goals.admin_changelist),
    ("#4 Recording throughput", goals.recording_throughput),
    ("#5 Portal login with and without recording", goals.portal_login),
    ("#6 Live delivery", goals.live_delivery),
    ("#7 CSV export vs psql \\copy", goals.csv_export),
    ("#9 Growth, as measured while the dataset was built", goals.growth),
    ("#10 The tab under load, 1 and 2 daphne processes", goals.tab_under_load),
    ("#11 Clients list with engagement columns, sorts and filters", goals.client_list_engagement),
]
GOALS = frozenset(title.split()[0].lstrip("#") for title, _ in MEASUREMENTS)


def run(scale: Scale, *, rebuild: bool, log: Callable[[str], None], only: frozenset[str] | None = None) -> str:
    """
    Measure at `scale`, save the report (docs/benchmarks.md for the full run) and return its table.
    With `only` (goal numbers), measure those alone and save nothing.
    """
    started = time.monotonic()
    _check_redis()

    def on_stage(ds: Dataset) -> dict:
        log(f"Growth measurements at {ds.total_events:,} events")
        return goals.growth_figures(ds, scale)

    ds = builder.build(scale, log=log, on_stage=on_stage, rebuild=rebuild)
    log(f"Dataset: {ds.total_events:,} events; the whale has {ds.whale.events:,}.")
    # A reused dataset holds what earlier runs recorded, on pages not yet all-visible;
    # autovacuum would have cleaned them (migration 0009), so the run starts as after it.
    loader.vacuum(log)
    lines: list[Line] = []
    for title, measure in MEASUREMENTS:
        if only and title.split()[0].lstrip("#") not in only:
            continue
        log(title)
        lines += measure(ds, scale)
    if only:
        return table(lines)
    _save(scale, ds, lines, seconds=time.monotonic() - started, log=log)
    return table(lines)


def _check_redis() -> None:
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        raise BenchmarkSetupError(
            f"Redis is not reachable at {settings.REDIS_URL} ({exc}). Start it, or set BENCH_REDIS_URL."
        ) from exc


def _save(scale: Scale, ds: Dataset, lines: list[Line], *, seconds: float, log: Callable[[str], None]) -> None:
    dataset_lines = [
        f"- **Dataset:** {ds.total_events:,} events over {scale.clients:,} clients in {scale.agencies} agencies; "
        f"the whale has {ds.whale.events:,}, probes have {ds.big.events:,} and {ds.small.events:,}; "
        "valid hash chains (checked by #8)",
    ]
    notes = []
    if ds.growth:
        notes.append(
            "#9 is measured while the dataset grows, stage by stage; a run that reuses a finished "
            f"dataset reports the figures of its build ({', '.join(g['measured_at'] for g in ds.growth)})."
        )
    generated = document(scale=scale.name, lines=lines, dataset=dataset_lines, notes=notes, seconds=seconds)
    target = DOCS if scale.name == "full" else SMOKE_REPORT
    target.parent.mkdir(parents=True, exist_ok=True)
    save(target, generated)
    log(f"Saved to {target.relative_to(ROOT)}")
