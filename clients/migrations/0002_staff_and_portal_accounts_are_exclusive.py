from django.db import migrations

from clients import db_guards


def install(apps, schema_editor):
    StaffMembership = apps.get_model("clients", "StaffMembership")
    both = StaffMembership.objects.filter(user__client__isnull=False).values_list("user__email", flat=True)
    both = list(both)
    if both:
        raise RuntimeError(
            "These accounts are both agency staff and client portal users; remove the staff "
            "membership or the client of each before migrating: " + ", ".join(both)
        )
    for statement in db_guards.install_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


def remove(apps, schema_editor):
    for statement in db_guards.remove_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    """Database triggers refuse an account that is both staff and a portal user."""

    dependencies = [("clients", "0001_initial")]

    operations = [migrations.RunPython(install, remove)]
