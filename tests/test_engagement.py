"""
Engagement at a glance (issue 10): the Clients list's Last login and 30-day login columns,
their sorts and the Last seen and Premium only filters, and each portal user's logins on
the Overview tab. Only roles that read the log see any of it.
"""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from activitylog.models import EventType
from activitylog.services import auth_event_record
from clients.models import Client, ClientStatus, Role
from tests.conftest import make_user

HTMX = {"HTTP_HX_REQUEST": "true"}
DAY = timedelta(days=1)


def names(html: str) -> list[str]:
    return re.findall(r'<a href="/clients/\d+/">([^<]+)</a>', html)


def _client(acme, name: str, *, premium: bool = False, logins_ago: tuple[timedelta, ...] = (), **fields) -> Client:
    client = Client.objects.create(agency=acme.agency, name=name, email=f"{name.split()[0].lower()}@clients.test",
                                   is_premium=premium, **fields)
    user = make_user(f"user@{name.split()[0].lower()}.test", client=client)
    now = timezone.now()
    for ago in sorted(logins_ago, reverse=True):  # oldest first, as they would have been recorded
        auth_event_record(user=user, event_type=EventType.LOGIN, occurred_at=now - ago)
    return client


@pytest.fixture
def engagement(acme):
    """Acme's clients, each with its own pattern of portal logins."""
    now = timezone.now()
    for ago in (40 * DAY, 10 * DAY):
        auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN, occurred_at=now - ago)
    # A failed sign-in and a logout are not logins: they count for nothing here.
    auth_event_record(user=acme.portal_user, event_type=EventType.LOGOUT)
    auth_event_record(user=acme.portal_member, event_type=EventType.LOGIN_FAILED, reason="bad_password")
    return {
        "busy": _client(acme, "Busy Bee", logins_ago=(10 * DAY, 5 * DAY, 3 * DAY, timedelta(hours=1))),
        "quiet": _client(acme, "Quiet Quarry", premium=True, logins_ago=(45 * DAY,)),
        "lapsed": _client(acme, "Lapsed Ltd", logins_ago=(100 * DAY,)),
        "never": _client(acme, "Never Navigated", premium=True, status=ClientStatus.INVITED),
    }


@pytest.fixture
def manager(client, acme):
    client.force_login(acme.manager)
    return client


def _row(html: str, name: str) -> str:
    return next(row for row in html.split("<tr>") if f">{name}</a>" in row)


def test_the_list_shows_each_clients_last_login_and_logins_in_the_last_30_days(manager, engagement):
    html = manager.get("/clients/").content.decode()
    busy = _row(html, "Busy Bee")
    assert ">1 hour ago<" in busy and 'data-label="Logins, last 30 days" class="number">4<' in busy
    acme_row = _row(html, "Acme Client Co")
    assert ">10 days ago<" in acme_row and 'class="number">1<' in acme_row  # the login 40 days ago is older
    assert 'class="number">0<' in _row(html, "Quiet Quarry")
    never = _row(html, "Never Navigated")
    assert "Never" in never and "<time" not in never and 'class="number">0<' in never


def test_times_are_in_the_viewers_zone_and_the_caption_says_which(manager, engagement):
    html = manager.get("/clients/").content.decode()
    assert "Times in America/New_York" in html and "last 30 days (30 × 24 hours up to now)" in html
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d E[SD]T</time>", _row(html, "Busy Bee"))


def test_30_days_are_30_times_24_hours_up_to_now(manager, acme):
    _client(acme, "Edge Case", logins_ago=(30 * DAY + timedelta(minutes=5), 30 * DAY - timedelta(minutes=5)))
    assert 'class="number">1<' in _row(manager.get("/clients/").content.decode(), "Edge Case")


@pytest.mark.parametrize(("sort", "expected"), [
    ("-last_login", ["Busy Bee", "Acme Client Co", "Quiet Quarry", "Lapsed Ltd", "Never Navigated"]),
    # Going up, never logged in counts as the oldest of all: who has gone quiet longest.
    ("last_login", ["Never Navigated", "Lapsed Ltd", "Quiet Quarry", "Acme Client Co", "Busy Bee"]),
    # Ties (0 logins) by name.
    ("-logins_30d", ["Busy Bee", "Acme Client Co", "Lapsed Ltd", "Never Navigated", "Quiet Quarry"]),
    ("logins_30d", ["Lapsed Ltd", "Never Navigated", "Quiet Quarry", "Acme Client Co", "Busy Bee"]),
    ("-name", ["Quiet Quarry", "Never Navigated", "Lapsed Ltd", "Busy Bee", "Acme Client Co"]),
    ("name", ["Acme Client Co", "Busy Bee", "Lapsed Ltd", "Never Navigated", "Quiet Quarry"]),
])
def test_it_sorts_by_last_login_logins_and_name(manager, engagement, sort, expected):
    assert names(manager.get(f"/clients/?sort={sort}").content.decode()) == expected


@pytest.mark.parametrize(("seen", "expected"), [
    ("7", ["Acme Client Co", "Lapsed Ltd", "Never Navigated", "Quiet Quarry"]),
    ("30", ["Lapsed Ltd", "Never Navigated", "Quiet Quarry"]),
    ("90", ["Lapsed Ltd", "Never Navigated"]),
    ("never", ["Never Navigated"]),
    ("", ["Acme Client Co", "Busy Bee", "Lapsed Ltd", "Never Navigated", "Quiet Quarry"]),
])
def test_last_seen_finds_clients_without_a_login_in_that_many_days_never_included(manager, engagement, seen, expected):
    assert names(manager.get(f"/clients/?seen={seen}").content.decode()) == expected


def test_the_filters_combine_with_each_other_with_search_status_and_sort(manager, engagement):
    assert names(manager.get("/clients/?premium=1").content.decode()) == ["Never Navigated", "Quiet Quarry"]
    assert names(manager.get("/clients/?premium=1&seen=30&sort=last_login").content.decode()) == [
        "Never Navigated", "Quiet Quarry"]
    assert names(manager.get("/clients/?premium=1&seen=30&status=invited").content.decode()) == ["Never Navigated"]
    assert names(manager.get("/clients/?seen=30&q=quarry").content.decode()) == ["Quiet Quarry"]
    # The search still finds a client by a portal user's email, once even if several match.
    assert names(manager.get("/clients/?q=user@lapsed").content.decode()) == ["Lapsed Ltd"]
    assert names(manager.get("/clients/?q=acme.test").content.decode()) == ["Acme Client Co"]


def test_another_agencys_clients_never_appear(manager, engagement, globex):
    for query in ("seen=never", "seen=7", "sort=last_login", "sort=-logins_30d", "premium=1"):
        html = manager.get(f"/clients/?{query}").content.decode()
        assert "Globex" not in html, query


def test_an_empty_list_says_what_narrowed_it_and_how_to_widen(manager, engagement):
    html = manager.get("/clients/?premium=1&seen=never&q=busy").content.decode()
    assert names(html) == []
    assert "No clients matching “busy”, never logged in, premium only." in html
    assert "clear the search, or choose Any time in Last seen, or untick Premium only" in html
    assert '<a href="/clients/">show all current clients</a>' in html
    assert "0 clients" in html


def test_the_sortable_headers_are_links_that_keep_the_filters_and_say_the_order(manager, engagement):
    html = manager.get("/clients/?seen=30&premium=1&sort=-last_login&page=1").content.decode()
    headers = dict(re.findall(r'<a id="sort-(\w+)" class="sort-link" href="\?([^"]+)"', html))
    # The active column reverses; the others start their own way; page goes, the filters stay.
    assert headers == {
        "name": "seen=30&amp;premium=1&amp;sort=name",
        "last_login": "seen=30&amp;premium=1&amp;sort=last_login",
        "logins_30d": "seen=30&amp;premium=1&amp;sort=-logins_30d",
    }
    assert re.findall(r'<th scope="col" aria-sort="(\w+)"><a id="sort-(\w+)"', html) == [("descending", "last_login")]
    assert 'hx-target="#client-listing"' in html


def test_by_default_the_name_header_says_ascending(manager, engagement):
    html = manager.get("/clients/").content.decode()
    assert re.findall(r'aria-sort="(\w+)"><a id="sort-(\w+)"', html) == [("ascending", "name")]


def test_a_sort_header_swaps_the_form_with_the_results_and_a_filter_only_the_results(manager, engagement):
    header = manager.get("/clients/?sort=last_login", HTTP_HX_TARGET="client-listing", **HTMX)
    html = header.content.decode()
    assert "<html" not in html and 'id="client-filters"' in html and 'id="client-results"' in html
    assert '<option value="last_login" selected>' in html
    results = manager.get("/clients/?seen=30", HTTP_HX_TARGET="client-results", **HTMX).content.decode()
    assert "<html" not in results and 'id="client-filters"' not in results
    assert names(results) == ["Lapsed Ltd", "Never Navigated", "Quiet Quarry"]



@pytest.mark.parametrize("query", ["seen=12", "seen=-30", "sort=bogus", "sort=last_login;drop", "premium=yes",
                                   "premium=0", "seen=30&sort=email"])
def test_a_bad_sort_or_filter_is_a_422_shown_inline(manager, engagement, query):
    for headers in ({}, HTMX):
        response = manager.get(f"/clients/?{query}", **headers)
        assert response.status_code == 422, query
        assert 'role="alert"' in response.content.decode()


@pytest.mark.parametrize("role", [Role.SUPER_ADMIN, Role.ADMIN, Role.MANAGER])
def test_every_role_that_reads_the_log_sees_the_engagement_columns(client, acme, engagement, role):
    client.force_login(acme.staff(role))
    html = client.get("/clients/?seen=30&sort=last_login").content.decode()
    assert names(html) == ["Never Navigated", "Lapsed Ltd", "Quiet Quarry"]
    assert 'id="sort-last_login"' in html and 'name="seen"' in html


def test_an_employee_sees_clients_without_any_fact_from_the_log(client, acme, engagement):
    client.force_login(acme.employee)
    html = client.get("/clients/").content.decode()
    assert names(html) == ["Acme Client Co", "Busy Bee", "Lapsed Ltd", "Never Navigated", "Quiet Quarry"]
    assert "Last login" not in html and "Logins" not in html and "<time" not in html
    assert 'name="seen"' not in html and 'value="-last_login"' not in html
    # Premium only and the name sorts are theirs too.
    assert names(client.get("/clients/?premium=1&sort=-name").content.decode()) == ["Quiet Quarry", "Never Navigated"]


@pytest.mark.parametrize("query", ["seen=30", "seen=never", "sort=last_login", "sort=-logins_30d",
                                   "seen=7&sort=-last_login"])
def test_an_employee_cannot_filter_or_sort_by_portal_activity(client, acme, engagement, query):
    client.force_login(acme.employee)
    response = client.get(f"/clients/?{query}")
    assert response.status_code == 422
    assert response.content.decode().count("Your role does not see portal activity") == 1


def test_pages_sorted_by_last_login_list_every_client_once(manager, acme):
    now = timezone.now()
    # 120 clients, a third without logins: they tie, and the name breaks the tie.
    for n in range(120):
        client = Client.objects.create(agency=acme.agency, name=f"Client {n:03d}", email=f"c{n}@many.test")
        if n % 3:
            user = make_user(f"u{n}@many.test", client=client)
            auth_event_record(user=user, event_type=EventType.LOGIN, occurred_at=now - (n % 7) * DAY)
    seen = []
    for page in (1, 2, 3):
        seen += names(manager.get(f"/clients/?sort=last_login&page={page}").content.decode())
    assert len(seen) == len(set(seen)) == 121
    # Never logged in first (Acme's own client too), by name.
    assert seen[:41] == ["Acme Client Co", *(f"Client {n:03d}" for n in range(0, 120, 3))]


def test_the_overview_shows_each_portal_users_last_login_and_login_counts(manager, acme):
    now = timezone.now()
    for ago in (400 * DAY, 40 * DAY, 3 * DAY):
        auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN, occurred_at=now - ago)
    auth_event_record(user=acme.portal_user, event_type=EventType.LOGOUT)
    html = manager.get(f"/clients/{acme.client.pk}/").content.decode()
    user = html[html.index(f'id="portal-user-{acme.portal_user.pk}"'):]
    user = user[:user.index("</li>")]
    assert "Last login" in user and ">3 days ago<" in user and re.search(r" E[SD]T</time>", user)
    assert "3 logins in all, 1 in the last 30 days" in user
    member = html[html.index(f'id="portal-user-{acme.portal_member.pk}"'):]
    assert "Invited — never signed in" in member[:member.index("</li>")]
    assert "Times in America/New_York." in html
    assert "1 in the last 30 days, 1 in the last 7" in html


def test_a_users_logins_of_all_time_are_counted_up_to_a_cap(manager, acme, monkeypatch):
    from activitylog import selectors

    monkeypatch.setattr(selectors, "LOGIN_COUNT_CAP", 3)
    now = timezone.now()
    for ago in (5 * DAY, 4 * DAY, 3 * DAY):
        auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN, occurred_at=now - ago)
    assert "3 logins in all" in manager.get(f"/clients/{acme.client.pk}/").content.decode()
    auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN)
    assert "3+ logins in all, 4 in the last 30 days" in manager.get(f"/clients/{acme.client.pk}/").content.decode()


def test_a_deactivated_user_who_never_signed_in_is_not_called_invited(manager, acme):
    acme.portal_member.is_active = False
    acme.portal_member.save()
    html = manager.get(f"/clients/{acme.client.pk}/").content.decode()
    member = html[html.index(f'id="portal-user-{acme.portal_member.pk}"'):]
    member = member[:member.index("</li>")]
    assert "Deactivated" in member and "Never signed in" in member and "Invited" not in member


def test_an_employee_sees_the_portal_users_without_their_logins(client, acme):
    auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN)
    client.force_login(acme.employee)
    html = client.get(f"/clients/{acme.client.pk}/").content.decode()
    assert "client@acme.test" in html and "member@acme.test" in html
    assert "Last login" not in html and "logins" not in html.lower() and "never signed in" not in html


def test_another_agencys_overview_is_404(manager, globex):
    assert manager.get(f"/clients/{globex.client.pk}/").status_code == 404
