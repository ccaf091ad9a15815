"""
The Clients list's engagement columns in real Chromium against the production server
(tests/servers.py): the sortable headers and the filters change the list in place with
htmx, keep the URL bookmarkable, and work without JavaScript; screenshots of the list and
the Overview at a desktop's and a phone's width go to test-artifacts/.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from activitylog.models import EventType
from activitylog.services import auth_event_record
from clients.models import Client, ClientStatus
from tests.conftest import PASSWORD, make_user
from tests.servers import asgi_server
from tests.test_browser import ARTIFACTS, _log

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("server_passwords")]

DAY = timedelta(days=1)
WIDTHS = {"desktop": 1366, "phone": 390}


@pytest.fixture
def clients(acme):
    """Acme's clients with their own patterns of portal logins (as tests/test_engagement.py)."""
    now = timezone.now()
    auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN, occurred_at=now - 10 * DAY)
    for name, premium, agos, status in [
        ("Busy Bee", False, (5 * DAY, timedelta(hours=1)), ClientStatus.ACTIVE),
        ("Quiet Quarry", True, (45 * DAY,), ClientStatus.ACTIVE),
        ("Lapsed Ltd", False, (100 * DAY,), ClientStatus.ACTIVE),
        ("Never Navigated", True, (), ClientStatus.INVITED),
    ]:
        slug = name.split()[0].lower()
        client = Client.objects.create(agency=acme.agency, name=name, email=f"{slug}@clients.test",
                                       company_name=f"{name} Holdings", is_premium=premium, status=status)
        user = make_user(f"user@{slug}.test", client=client, full_name=f"{name.split()[0]} Person")
        for ago in sorted(agos, reverse=True):
            auth_event_record(user=user, event_type=EventType.LOGIN, occurred_at=now - ago)


def _signed_in(browser, url: str, *, width: int = WIDTHS["desktop"], javascript: bool = True):
    page = browser.new_context(viewport={"width": width, "height": 900}, java_script_enabled=javascript).new_page()
    page.goto(f"{url}/login/?next=/clients/")
    page.fill("#id_username", "manager@acme.test")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/clients/")
    return page


def _names(page) -> list[str]:
    return page.locator("#client-results tbody td[data-label=Client] > a").all_inner_texts()


def test_the_headers_and_filters_sort_and_narrow_the_list_in_place(browser, acme, clients):
    from playwright.sync_api import expect

    with asgi_server(log_path=_log("server-engagement")) as url:
        page = _signed_in(browser, url)
        page.evaluate("window.__sameDocument = true")
        names = page.locator("#client-results tbody td[data-label=Client] > a")
        expect(names).to_have_text(["Acme Client Co", "Busy Bee", "Lapsed Ltd", "Never Navigated", "Quiet Quarry"])

        page.click("#sort-last_login")
        expect(names).to_have_text(["Busy Bee", "Acme Client Co", "Quiet Quarry", "Lapsed Ltd", "Never Navigated"])
        expect(page.locator("th[aria-sort]")).to_have_attribute("aria-sort", "descending")
        expect(page.locator("#id_sort")).to_have_value("-last_login")
        assert page.url.endswith("/clients/?sort=-last_login")
        expect(page.locator("#sort-last_login")).to_be_focused()

        page.click("#sort-last_login")
        expect(names).to_have_text(["Never Navigated", "Lapsed Ltd", "Quiet Quarry", "Acme Client Co", "Busy Bee"])
        expect(page.locator("th[aria-sort]")).to_have_attribute("aria-sort", "ascending")

        page.select_option("#id_seen", "30")
        expect(names).to_have_text(["Never Navigated", "Lapsed Ltd", "Quiet Quarry"])
        page.check("input[name=premium]")
        expect(names).to_have_text(["Never Navigated", "Quiet Quarry"])
        page.wait_for_url("**/clients/?*premium=1*")
        assert "seen=30" in page.url and "sort=last_login" in page.url

        page.fill("input[name=q]", "busy")
        expect(page.locator("td.empty")).to_contain_text("No clients matching “busy”, not seen in 30 days, premium only.")
        assert page.evaluate("window.__sameDocument") is True  # every sort and filter so far: htmx, no reload
        page.click("td.empty >> text=show all current clients")
        expect(names).to_have_count(5)
        assert page.evaluate("window.__sameDocument") is None  # that link is a plain page load

        # A bookmarked URL opens on the same list.
        page.goto(f"{url}/clients/?seen=30&premium=1&sort=last_login")
        expect(names).to_have_text(["Never Navigated", "Quiet Quarry"])
        expect(page.locator("input[name=premium]")).to_be_checked()


def test_without_javascript_the_headers_and_the_form_still_work(browser, acme, clients):
    from playwright.sync_api import expect

    with asgi_server(log_path=_log("server-engagement-nojs")) as url:
        page = _signed_in(browser, url, javascript=False)
        names = page.locator("#client-results tbody td[data-label=Client] > a")
        page.click("#sort-logins_30d")
        expect(names).to_have_text(["Busy Bee", "Acme Client Co", "Lapsed Ltd", "Never Navigated", "Quiet Quarry"])
        page.select_option("#id_seen", "never")
        page.click("#client-filters button[type=submit]")
        expect(names).to_have_text(["Never Navigated"])
        assert "seen=never" in page.url and "sort=-logins_30d" in page.url


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
def test_screenshots_of_the_list_and_the_overview(browser, acme, clients, width):
    from playwright.sync_api import expect

    name = next(k for k, v in WIDTHS.items() if v == width)
    with asgi_server(log_path=_log(f"server-engagement-{name}")) as url:
        page = _signed_in(browser, url, width=width)
        page.goto(f"{url}/clients/?sort=-last_login")
        expect(page.locator("#client-results tbody tr")).to_have_count(5)
        assert page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 0
        page.screenshot(path=str(ARTIFACTS / f"clients-list-{name}.png"), full_page=True)

        page.goto(f"{url}/clients/{acme.client.pk}/")
        expect(page.locator(f"#portal-user-{acme.portal_member.pk}")).to_contain_text("Invited — never signed in")
        expect(page.locator(f"#portal-user-{acme.portal_user.pk}")).to_contain_text("1 login in all")
        assert page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 0
        page.screenshot(path=str(ARTIFACTS / f"client-overview-{name}.png"), full_page=True)
