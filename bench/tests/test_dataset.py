"""
The benchmark's dataset builder (bench/people.py, bench/loader.py) writes what the
recording service would: chains that verify, in stages, with the table's indexes back.
No timings here; `make bench-smoke` runs the measurements.
"""

import io
import json
from dataclasses import replace

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from activitylog.models import AuthEvent
from bench import builder, dataset, loader, people
from bench.scale import FULL, SMOKE

TINY = replace(
    SMOKE, total_events=600, clients=12, agencies=2, whale_events=100, big_events=20, big_clients=2,
    small_events=5, growth_stages=(200, 600),
)


def _structures() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'activitylog_authevent'::regclass
               UNION SELECT conname FROM pg_constraint WHERE conrelid = 'activitylog_authevent'::regclass"""
        )
        return {name for (name,) in cursor.fetchall()}


@pytest.mark.django_db(transaction=True)
def test_the_dataset_builder_writes_chains_that_verify_and_grow_in_stages():
    if connection.vendor != "postgresql":
        pytest.skip("the builder uses PostgreSQL's COPY and catalogs")
    before = _structures()
    people.create_people(TINY)
    sizes = dataset.client_sizes(TINY)
    t_end = timezone.now()

    loaded = [loader.load_stage(TINY, sizes, total, t_end, log=lambda message: None) for total in TINY.growth_stages]

    assert sum(loaded) == AuthEvent.objects.count() == TINY.total_events
    whale = AuthEvent.objects.filter(client__email=dataset.client_email(0))
    assert whale.count() == TINY.whale_events
    assert list(whale.order_by("seq").values_list("seq", flat=True)) == list(range(1, TINY.whale_events + 1))
    out = io.StringIO()
    call_command("verify_activity_log", stdout=out)  # raises on any broken link
    assert "All chains intact." in out.getvalue()
    assert _structures() == before, "the bulk load must put back every index and constraint"


def test_the_full_dataset_has_ten_million_events_with_a_whale_and_the_probes():
    sizes = dataset.client_sizes(FULL)
    assert len(sizes) == FULL.clients
    assert sum(sizes) == FULL.total_events
    assert sizes[0] == max(sizes) == 1_000_000
    assert sizes[1] == 100_000 and sizes[1 + FULL.big_clients] == 1_000


@pytest.mark.parametrize("scale", [SMOKE, FULL], ids=["smoke", "full"])
def test_a_dataset_built_from_the_same_spec_is_reused_not_rebuilt(scale):
    """The stored marker is JSON; the spec it is held against must read the same."""
    stored = {"spec": json.loads(json.dumps(builder._spec(scale))), "building": False}
    assert builder._needs_reset(stored, builder._spec(scale)) == ""
    assert builder._needs_reset(stored, builder._spec(replace(scale, total_events=scale.total_events + 1))) != ""
