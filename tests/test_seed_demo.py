"""The demo seed is idempotent and writes its history through the recording service."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from activitylog.models import AuthEvent
from clients.models import Agency, Client, Role, StaffMembership, User


def seed(*args) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_it_creates_the_documented_accounts_and_prints_them():
    output = seed("--password", "s3cret-demo")

    assert set(Agency.objects.values_list("slug", flat=True)) == {"acme", "globex"}
    roles = dict(StaffMembership.objects.values_list("user__email", "role"))
    assert roles == {
        "superadmin@acme.test": Role.SUPER_ADMIN, "admin@acme.test": Role.ADMIN,
        "manager@acme.test": Role.MANAGER, "employee@acme.test": Role.EMPLOYEE,
        "manager@globex.test": Role.MANAGER,
    }
    assert User.objects.get(email="root@demo.test").is_superuser
    assert User.objects.get(email="client@acme.test").client.agency.slug == "acme"
    assert User.objects.get(email="client@globex.test").client.agency.slug == "globex"
    for client in Client.objects.filter(agency__slug="acme"):
        assert 1 <= client.portal_users.count() <= 3
    assert User.objects.get(email="manager@acme.test").check_password("s3cret-demo")
    assert "s3cret-demo" in output and "manager@acme.test" in output and "root@demo.test" in output


@pytest.mark.django_db
def test_running_it_twice_changes_nothing_and_the_chains_verify():
    seed()
    counts = (User.objects.count(), Client.objects.count(), AuthEvent.objects.count())
    assert counts[2] > 100

    output = seed()

    assert (User.objects.count(), Client.objects.count(), AuthEvent.objects.count()) == counts
    assert "nothing new recorded" in output
    verify = StringIO()
    call_command("verify_activity_log", stdout=verify)
    assert "All chains intact" in verify.getvalue()


@pytest.mark.django_db
def test_a_too_short_password_is_a_clear_error():
    with pytest.raises(CommandError, match="at least 8"):
        seed("--password", "short")
