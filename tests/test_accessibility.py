"""
Every page has zero axe-core violations (WCAG 2.1 A and AA rules), for every role that
sees it, at a desktop width (1366 px) and a phone's (390 px). Real Chromium against the
production server (tests/servers.py), with axe-core as axe-playwright-python bundles it.
"""

import pytest

from activitylog.services import auth_event_record
from tests.conftest import PASSWORD
from tests.servers import asgi_server
from tests.test_browser import _log

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("server_passwords")]

WIDTHS = {"desktop": 1366, "phone": 390}
WCAG_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}


def _violations(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options=WCAG_AA)
    found = [
        f"{page.url} {v['id']}: {v['help']} ({', '.join(n['target'][0] for n in v['nodes'][:3])})"
        for v in results.response["violations"]
    ]
    # WCAG 1.4.10 Reflow: nothing makes the page scroll sideways, at any width down to a phone's.
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    if overflow > 0:
        found.append(f"{page.url} scrolls sideways by {overflow} px")
    return found


def _signed_in(browser, url: str, width: int, login_path: str, email: str):
    page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
    page.goto(url + login_path)
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("[type=submit]")
    page.wait_for_load_state()
    return page


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
def test_every_page_has_no_axe_violations_for_every_role(browser, acme, root, width):
    events = [
        auth_event_record(user=acme.portal_user, event_type=event_type,
                          reason="bad_password" if event_type == "login_failed" else "")
        for event_type in ("login", "login_failed", "logout")
    ]
    client = acme.client.pk
    found = []
    with asgi_server(log_path=_log("server-axe")) as url:
        anonymous = browser.new_context(viewport={"width": width, "height": 900}).new_page()
        for path in ("/login/", "/portal/login/"):
            anonymous.goto(url + path)
            found += _violations(anonymous)

        staff_pages = {
            "manager@acme.test": ["/clients/", "/clients/?seen=30&premium=1&sort=-last_login",
                                  "/clients/?seen=never&q=nobody", "/clients/?seen=12",
                                  f"/clients/{client}/", f"/clients/{client}/activity/",
                                  f"/clients/{client}/activity/?type=logout",
                                  f"/clients/{client}/activity/?range=7d&q=client%40acme.test",
                                  f"/clients/{client}/activity/events/{events[0].pk}/",
                                  f"/clients/{client}/activity/?date_from=2030-01-02&date_to=2030-01-01"],
            "admin@acme.test": [f"/clients/{client}/activity/"],
            "employee@acme.test": ["/clients/", f"/clients/{client}/"],
        }
        for email, paths in staff_pages.items():
            page = _signed_in(browser, url, width, "/login/", email)
            for path in paths:
                page.goto(url + path)
                found += _violations(page)

        portal = _signed_in(browser, url, width, "/portal/login/", "client@acme.test")
        found += _violations(portal)

        admin = _signed_in(browser, url, width, "/admin/login/", "root@platform.test")
        for path in ("/admin/activitylog/authevent/", f"/admin/activitylog/authevent/{events[0].pk}/change/"):
            admin.goto(url + path)
            found += _violations(admin)

    assert found == []


def test_on_a_phone_the_tables_stack_into_cards_that_label_every_field(browser, acme):
    auth_event_record(user=acme.portal_user, event_type="login")
    labels = """() => [...document.querySelectorAll('table tbody tr:not(#load-older) td:not(.empty)')].map(
        td => [td.closest('table').querySelector('thead').offsetParent === null,
               getComputedStyle(td, '::before').content])"""
    with asgi_server(log_path=_log("server-axe-phone")) as url:
        page = _signed_in(browser, url, WIDTHS["phone"], "/login/", "manager@acme.test")
        for path, expected in [("/clients/", ["Client", "Company", "Status", "Last login", "Logins, last 30 days"]),
                               (f"/clients/{acme.client.pk}/activity/",
                                ["Event", "Date and time", "Portal user", "IP address", "Browser and OS"])]:
            page.goto(url + path)
            cells = page.evaluate(labels)
            assert cells and all(header_hidden for header_hidden, _ in cells), path
            assert [content.strip('"') for _, content in cells[: len(expected)]] == expected, path
