"""
Shared fixtures: two agencies (Acme and Globex), one staff user of every role in each,
clients with portal users in each, and a platform superuser.

Charlie-style rule: every permission test includes someone who must be refused.
"""

import os
import shutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from django.contrib.auth.hashers import make_password
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from clients.models import Agency, Client, ClientStatus, Role, StaffMembership, User

# Property-based tests stay bounded by their number of examples. The deadline only reports
# an example slower than 30 s: a tighter one turns a busy machine's slow first example
# (hypothesis runs it again, faster) into a flake. Examples share the test's database, so
# its function-scoped fixtures are fine. HYPOTHESIS_PROFILE=thorough searches far longer,
# for a run by hand.
hypothesis_settings.register_profile(
    "suite", max_examples=60, deadline=30_000, print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
hypothesis_settings.register_profile("thorough", hypothesis_settings.get_profile("suite"), max_examples=2_000)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))

PASSWORD = "correct-horse-battery"
CHROME_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)


class _StoredPassword:
    """The hash fixture users get for PASSWORD: MD5 (the test settings' fast default) or PBKDF2."""

    hash: str | None = None  # None: hash with the test settings' default


@cache
def production_password_hash() -> str:
    # Full strength, computed once per session: every user who gets it shares one salt,
    # which is fine for test accounts and keeps the suite fast.
    return make_password(PASSWORD, hasher="pbkdf2_sha256")


@pytest.fixture
def server_passwords(monkeypatch):
    """
    Users made from here on store a PBKDF2 hash of PASSWORD, the hasher of the
    production settings that server processes run (tests/servers.py): they cannot check
    MD5. Request it before the people fixtures (first argument, or `usefixtures`).
    Sign these users in through the servers only: an in-process login would rehash the
    password with MD5, the test settings' preferred hasher.
    """
    monkeypatch.setattr(_StoredPassword, "hash", production_password_hash())


def _store_password(user: User) -> User:
    if _StoredPassword.hash is not None:
        user.password = _StoredPassword.hash
        user.save(update_fields=["password"])
    return user


def make_user(email: str, **fields) -> User:
    return _store_password(User.objects.create_user(email=email, password=PASSWORD, **fields))


def make_staff(email: str, agency: Agency, role: str) -> User:
    user = make_user(email)
    StaffMembership.objects.create(user=user, agency=agency, role=role)
    return user


@dataclass
class AgencyPeople:
    agency: Agency
    super_admin: User
    admin: User
    manager: User
    employee: User
    client: Client
    portal_user: User
    portal_member: User

    def staff(self, role: str) -> User:
        return getattr(self, role)


def _agency_people(slug: str, name: str, tz: str) -> AgencyPeople:
    agency = Agency.objects.create(name=name, slug=slug, time_zone=tz)
    client = Client.objects.create(
        agency=agency, name=f"{name} Client Co", email=f"hello@{slug}-client.test",
        company_name=f"{name} Client Company", status=ClientStatus.ACTIVE,
    )
    return AgencyPeople(
        agency=agency,
        super_admin=make_staff(f"superadmin@{slug}.test", agency, Role.SUPER_ADMIN),
        admin=make_staff(f"admin@{slug}.test", agency, Role.ADMIN),
        manager=make_staff(f"manager@{slug}.test", agency, Role.MANAGER),
        employee=make_staff(f"employee@{slug}.test", agency, Role.EMPLOYEE),
        client=client,
        portal_user=make_user(f"client@{slug}.test", client=client),
        portal_member=make_user(f"member@{slug}.test", client=client),
    )


@pytest.fixture
def acme(db) -> AgencyPeople:
    return _agency_people("acme", "Acme", "America/New_York")


@pytest.fixture
def globex(db) -> AgencyPeople:
    return _agency_people("globex", "Globex", "Europe/Berlin")


@pytest.fixture
def root(db) -> User:
    """A platform superuser: Django admin only, no agency."""
    return _store_password(User.objects.create_superuser(email="root@platform.test", password=PASSWORD))


LOG_ROLES = [Role.SUPER_ADMIN, Role.ADMIN, Role.MANAGER]
ALL_ROLES = [*LOG_ROLES, Role.EMPLOYEE]


def portal_login(client, email: str, password: str = PASSWORD, **headers):
    return client.post("/portal/login/", {"username": email, "password": password}, **headers)


def portal_logout(client, **headers):
    return client.post("/portal/logout/", **headers)


# Real Chromium for the browser tests (tests/test_browser*.py, test_accessibility.py) ----------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


def browser_unavailable(reason: str):
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (REQUIRE_BROWSER=1: browser tests must run here)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        browser_unavailable("Chromium not found: install it with `apt-get install chromium` to run browser tests")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; Django then refuses
    # database calls from it unless told that this (test-only) use is deliberate.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
