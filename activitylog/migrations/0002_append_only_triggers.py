from django.db import migrations

from activitylog import db_guards


def install(apps, schema_editor):
    for statement in db_guards.install_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


def remove(apps, schema_editor):
    for statement in db_guards.remove_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    """Database triggers refuse UPDATE, DELETE and TRUNCATE on the activity log."""

    dependencies = [("activitylog", "0001_initial")]

    operations = [migrations.RunPython(install, remove)]
