from django.db import migrations, models

from activitylog import db_guards


def reinstall_sqlite_triggers(apps, schema_editor):
    # SQLite cannot add a NOT NULL column in place: Django rebuilds the table, and the
    # append-only triggers go with the old one. PostgreSQL adds the column in place.
    if schema_editor.connection.vendor == "sqlite":
        for statement in db_guards.install_sql("sqlite"):
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    """
    Each event records the form its hash was computed in. Events recorded from now on are
    v2, whose hash covers the event's id; the rows already there are v1 and verify as
    they were written. A constant default: PostgreSQL adds the column without rewriting
    or scanning the table.
    """

    dependencies = [("activitylog", "0004_failed_login_lockout_reason")]

    operations = [
        # Runs when the migration is reversed, after the column is gone (and the rebuilt table lost its triggers).
        migrations.RunPython(migrations.RunPython.noop, reinstall_sqlite_triggers),
        migrations.AddField(
            model_name="authevent",
            name="chain_version",
            field=models.SmallIntegerField(db_default=1),
        ),
        migrations.RunPython(reinstall_sqlite_triggers, migrations.RunPython.noop),
    ]
