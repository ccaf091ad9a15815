# The log is append-only, so PostgreSQL's autovacuum never sees dead rows to clean, and its
# insert trigger waits for 20 % of the table: two million events at ten million. Until a
# vacuum marks them all-visible, the pages that new events land on make index-only scans
# visit the heap: the tab's login counts and the Clients list's 30-day counts read the
# newest pages most. Measured on the benchmark's dataset after 59 k inserts: 61 k heap
# fetches for the Clients list's query over all clients, 95 ms, and 77 ms once vacuumed.
# A vacuum every 10,000 events only reads the pages not yet all-visible, so it stays
# cheap at any size.

from django.db import migrations

_TABLE = "activitylog_authevent"


def _vacuum_after_inserts(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"ALTER TABLE {_TABLE} SET (autovacuum_vacuum_insert_threshold = 10000, "
            "autovacuum_vacuum_insert_scale_factor = 0)"
        )


def _default_vacuum(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"ALTER TABLE {_TABLE} RESET (autovacuum_vacuum_insert_threshold, autovacuum_vacuum_insert_scale_factor)"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("activitylog", "0008_failure_counts_index_only"),
    ]

    operations = [
        migrations.RunPython(_vacuum_after_inserts, _default_vacuum),
    ]
