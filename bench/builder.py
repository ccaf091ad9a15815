"""
Builds the benchmark dataset, or finds it already built.

The dataset grows in stages (1 M, 5 M, 10 M events at full scale), so that measurements
can be repeated as the table grows. Each client's history is a fixed function of the
seed, spread over two to three years; a stage appends the next part of every history,
in time order, as production would have. A `bench_dataset` row records what was built:
a finished dataset of the same spec is reused by the next run; an interrupted or
different one is dropped and built again.
"""

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from activitylog import chain
from bench import loader
from bench.database import drop_database, ensure_database
from bench.dataset import WORK_CLIENTS, Dataset, Probe, client_ids, client_sizes, events_at_stage, probe_indexes
from bench.people import create_people
from bench.scale import Scale

BUILDER_VERSION = 3  # bump when the generated data changes: old datasets are rebuilt
MARKER_DDL = """
CREATE TABLE IF NOT EXISTS bench_dataset (
    id int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    spec jsonb NOT NULL,
    stages_done int NOT NULL DEFAULT 0,
    building boolean NOT NULL DEFAULT false,
    t_end timestamptz NOT NULL,
    growth jsonb NOT NULL DEFAULT '[]',
    built_at timestamptz
)"""


def build(scale: Scale, *, log: Callable[[str], None], on_stage: Callable[[Dataset], dict] | None = None,
          rebuild: bool = False) -> Dataset:
    """
    Make sure the database holds the dataset of `scale`, building or finishing it.

    `on_stage` runs after each newly built stage (the growth measurements) and returns a
    dict kept with the dataset, so a later run that reuses it can still report them.
    """
    marker = _start(scale, rebuild=rebuild, log=log)
    sizes = client_sizes(scale)
    for stage, stage_total in enumerate(scale.growth_stages, start=1):
        if stage <= marker["stages_done"]:
            continue
        _set_marker(building=True)
        started = time.monotonic()
        loaded = loader.load_stage(scale, sizes, stage_total, marker["t_end"], log)
        _set_marker(building=False, stages_done=stage, built_at=timezone.now())
        log(f"Stage {stage}: {loaded:,} events loaded in {time.monotonic() - started:.0f} s "
            f"({stage_total:,} in the dataset).")
        loader.vacuum(log)
        marker = _marker()
        if on_stage is not None:
            _set_marker(growth=[*marker["growth"], on_stage(_dataset(scale, sizes, marker))])
            marker = _marker()
    return _dataset(scale, sizes, marker)


def _start(scale: Scale, *, rebuild: bool, log: Callable[[str], None]) -> dict:
    """The marker of the dataset to build on: this one's, or a new one, with its people."""
    ensure_database()
    spec = _spec(scale)
    reason = "--rebuild was given" if rebuild else _needs_reset(_marker(), spec)
    if reason:
        log(f"Dropping the benchmark database: {reason}.")
        drop_database()
        ensure_database()
    if _marker() is None:
        t_end = timezone.now().replace(microsecond=0) - timedelta(hours=1)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(MARKER_DDL)
                cursor.execute("INSERT INTO bench_dataset (spec, t_end) VALUES (%s, %s)", [json.dumps(spec), t_end])
            create_people(scale)
        log(f"Created {scale.agencies} agencies, {scale.clients + WORK_CLIENTS + 2} clients and their users.")
    return _marker()


def _dataset(scale: Scale, sizes: list[int], marker: dict) -> Dataset:
    stage_total = scale.growth_stages[marker["stages_done"] - 1]
    ids = client_ids(scale.clients)
    probes = {
        name: Probe(ids[index], events_at_stage(sizes[index], stage_total, scale))
        for name, index in probe_indexes(scale).items()
    }
    total = sum(events_at_stage(s, stage_total, scale) for s in sizes)
    built_at = marker["built_at"].isoformat(timespec="minutes") if marker["built_at"] else ""
    return Dataset(scale=scale.name, total_events=total, stages_done=marker["stages_done"],
                   built_at=built_at, growth=marker["growth"], **probes)


# The marker: which dataset is in this database --------------------------------------------------


def _spec(scale: Scale) -> dict:
    # The chain key is part of the spec: hashes made with another key would not verify.
    key_id = hashlib.sha256(b"bench-key-id:" + chain.chain_key()).hexdigest()[:16]
    spec = {"builder": BUILDER_VERSION, "scale": asdict(scale) | {"seed": scale.seed}, "chain_key": key_id}
    # As the marker stores it (JSON: tuples come back as lists), so an unchanged dataset
    # compares equal and is reused instead of rebuilt.
    return json.loads(json.dumps(spec))


def _marker() -> dict | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('bench_dataset') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return None
        cursor.execute("SELECT spec, stages_done, building, t_end, growth, built_at FROM bench_dataset")
        row = cursor.fetchone()
    if row is None:
        return None
    spec, stages_done, building, t_end, growth, built_at = row
    # Django's cursor hands jsonb over as text (JSONField decodes it itself).
    spec, growth = (json.loads(v) if isinstance(v, str) else v for v in (spec, growth))
    return {"spec": spec, "stages_done": stages_done, "building": building, "t_end": t_end,
            "growth": growth, "built_at": built_at}


def _set_marker(**values) -> None:
    assignments = ", ".join(f"{name} = %s" for name in values)
    params = [json.dumps(v) if isinstance(v, (dict, list)) else v for v in values.values()]
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE bench_dataset SET {assignments}", params)


def _needs_reset(marker: dict | None, spec: dict) -> str:
    if marker is None:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {loader.EVENT_TABLE})")
            if cursor.fetchone()[0]:
                return "the database holds events that this builder did not write"
        return ""
    if marker["spec"] != spec:
        return "it was built with another size, seed, builder version or chain key"
    if marker["building"]:
        return "an earlier build was interrupted"
    return ""
