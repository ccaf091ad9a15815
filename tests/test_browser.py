"""
End to end in real Chromium against real server processes, started as a deployment
runs them (tests/servers.py: daphne, production settings, DEBUG off, collected static
files, Redis when reachable): a manager's open tab shows a client's login and logout
without a reload, also across two server processes that share the database and Redis.

Needs Debian's Chromium (`apt-get install chromium`). Without it these tests skip with
that hint, except where REQUIRE_BROWSER=1 (CI), where they fail instead.
"""

from pathlib import Path

import pytest

from tests.conftest import PASSWORD, browser_unavailable
from tests.servers import ROOT, asgi_server, redis_available, server_redis

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("server_passwords")]

ARTIFACTS = ROOT / "test-artifacts"
# A deadline, not a speed goal (that is `make bench`): generous, so a busy machine cannot fail it.
LIVE_WITHIN_MS = 15_000


def _log(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / f"{name}.log"


def staff_tab(browser, base_url: str, email: str, client_id: int):
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{base_url}/login/?next=/clients/{client_id}/activity/")
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector('#activity-live-status[data-state="live"]', timeout=10_000)
    # Survives only if the page is never reloaded.
    page.evaluate("window.__sameDocument = true")
    return page


def portal_page(browser, base_url: str, email: str):
    page = browser.new_context().new_page()
    page.goto(f"{base_url}/portal/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    return page


def assert_new_row(tab, event_type: str, email: str, count: int) -> None:
    from playwright.sync_api import expect

    rows = tab.locator("#activity-rows tr.event")
    expect(rows).to_have_count(count, timeout=LIVE_WITHIN_MS)
    newest = rows.first
    expect(newest).to_have_class(f"event event-{event_type} event-new")
    expect(newest).to_contain_text(email)
    assert tab.evaluate("window.__sameDocument") is True


def _login_and_logout_appear_live(browser, staff_url: str, portal_url: str, acme, name: str) -> None:
    from playwright.sync_api import expect

    tab = staff_tab(browser, staff_url, "manager@acme.test", acme.client.pk)
    assert tab.locator("#activity-rows tr.event").count() == 0

    client = portal_page(browser, portal_url, "client@acme.test")
    client.click("button[type=submit]")
    client.wait_for_url("**/portal/")
    assert_new_row(tab, "login", "client@acme.test", 1)
    expect(tab.locator("#summary-7d")).to_have_text("1")
    expect(tab.locator("#summary-last-login")).not_to_contain_text("Never")
    tab.screenshot(path=str(ARTIFACTS / f"{name}-login.png"))

    client.click("text=Sign out")
    client.wait_for_url("**/portal/login/")
    assert_new_row(tab, "logout", "client@acme.test", 2)
    tab.screenshot(path=str(ARTIFACTS / f"{name}-logout.png"))


def test_a_clients_login_and_logout_appear_in_an_open_tab_without_a_reload(browser, acme):
    with asgi_server(log_path=_log("server-single")) as url:
        _login_and_logout_appear_live(browser, url, url, acme, "single")


def test_a_login_on_one_server_process_appears_in_a_tab_on_another(browser, acme):
    if not redis_available():
        browser_unavailable(f"Redis is not reachable at {server_redis()[0]}; two server processes need it")
    with asgi_server(log_path=_log("server-a")) as server_a, asgi_server(log_path=_log("server-b")) as server_b:
        _login_and_logout_appear_live(browser, staff_url=server_b, portal_url=server_a, acme=acme, name="two-processes")


def test_a_filtered_tab_ignores_events_outside_its_filter(browser, acme):
    from playwright.sync_api import expect

    with asgi_server(log_path=_log("server-filter")) as url:
        tab = staff_tab(browser, url, "manager@acme.test", acme.client.pk)
        tab.select_option("select[name=type]", "logout")
        tab.wait_for_url("**type=logout**")
        tab.wait_for_selector('#activity-live-status[data-state="live"]')

        client = portal_page(browser, url, "client@acme.test")
        client.click("button[type=submit]")
        client.wait_for_url("**/portal/")
        client.click("text=Sign out")
        client.wait_for_url("**/portal/login/")

        rows = tab.locator("#activity-rows tr.event")
        expect(rows).to_have_count(1, timeout=LIVE_WITHIN_MS)
        expect(rows.first).to_have_class("event event-logout event-new")


def test_the_tab_reconnects_and_catches_up_after_the_server_restarts(browser, acme):
    """Kill the server under an open tab, log in meanwhile, restart: the row arrives once."""
    from playwright.sync_api import expect

    from activitylog.models import EventType
    from activitylog.services import auth_event_record

    log = _log("server-restart")
    with asgi_server(log_path=log) as url:
        tab = staff_tab(browser, url, "manager@acme.test", acme.client.pk)
    # The server is gone; the tab notices and keeps trying.
    tab.wait_for_selector('#activity-live-status[data-state="reconnecting"]', timeout=10_000)
    missed = auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN)

    port = int(url.rsplit(":", 1)[1])
    with asgi_server(log_path=log, port=port):
        tab.wait_for_selector('#activity-live-status[data-state="live"]', timeout=20_000)
        rows = tab.locator("#activity-rows tr.event")
        expect(rows).to_have_count(1, timeout=LIVE_WITHIN_MS)
        expect(rows.first).to_have_attribute("id", f"event-{missed.pk}")
        assert tab.evaluate("window.__sameDocument") is True


def test_the_tabs_work_from_the_keyboard_and_switch_without_a_full_reload(browser, acme):
    from playwright.sync_api import expect

    with asgi_server(log_path=_log("server-tabs")) as url:
        page = browser.new_context().new_page()
        page.goto(f"{url}/login/?next=/clients/{acme.client.pk}/")
        page.fill("#id_username", "manager@acme.test")
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("#tab-overview")).to_have_attribute("aria-selected", "true")
        page.evaluate("window.__sameDocument = true")
        # The tab is in the HTML before app.js (deferred) has run; a key pressed before
        # then is lost. "load" comes after every deferred script.
        page.wait_for_load_state("load")

        page.focus("#tab-overview")
        page.keyboard.press("ArrowRight")
        expect(page.locator("#tab-activity")).to_be_focused()
        page.keyboard.press("Enter")

        page.wait_for_url(f"**/clients/{acme.client.pk}/activity/")
        expect(page.locator("#tab-activity")).to_have_attribute("aria-selected", "true")
        expect(page.locator("#tab-activity")).to_be_focused()
        expect(page.locator("#activity-live-status")).to_have_attribute("data-state", "live")
        assert page.evaluate("window.__sameDocument") is True

        page.keyboard.press("ArrowLeft")
        page.keyboard.press(" ")
        page.wait_for_url(f"**/clients/{acme.client.pk}/")
        expect(page.locator("#tab-overview")).to_have_attribute("aria-selected", "true")
        page.go_back()  # the pushed URL works with the browser's history
        page.wait_for_url(f"**/clients/{acme.client.pk}/activity/")


# Content-Security-Policy ------------------------------------------------------------------

# Playwright runs this before any page script, outside the page's CSP.
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile}:${e.lineNumber})`);
});
"""


class CspWatch:
    """Every CSP violation in the browsers it opens: `securitypolicyviolation` events and console errors."""

    def __init__(self, browser) -> None:
        self.browser = browser
        self.console: list[str] = []
        self.pages = []
        self.policies: set[str] = set()

    def open(self, url: str):
        """A page in a browser context of its own (its own cookies: one person)."""
        context = self.browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_init_script(RECORD_CSP_VIOLATIONS)
        context.on("console", self._console)
        page = context.new_page()
        self.pages.append(page)
        self.goto(page, url)
        return page

    def _console(self, message) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            self.console.append(message.text)

    def goto(self, page, url: str) -> None:
        response = page.goto(url)
        self.policies.add(response.headers.get("content-security-policy", ""))

    def violations(self) -> list[str]:
        return self.console + [v for page in self.pages for v in page.evaluate("window.__cspViolations")]


def _sign_in(page, email: str) -> None:
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("[type=submit]")


def test_the_live_tab_runs_under_a_csp_without_inline_script_or_style(browser, acme):
    from playwright.sync_api import expect

    with asgi_server(log_path=_log("server-csp")) as url:
        watch = CspWatch(browser)
        tab = watch.open(f"{url}/login/?next=/clients/{acme.client.pk}/")
        _sign_in(tab, "manager@acme.test")
        tab.click("#tab-activity")  # htmx swap, then the websocket (connect-src)
        tab.wait_for_selector('#activity-live-status[data-state="live"]', timeout=10_000)

        client = watch.open(f"{url}/portal/login/")
        _sign_in(client, "client@acme.test")
        client.wait_for_url("**/portal/")
        client.click("text=Sign out")
        client.wait_for_url("**/portal/login/")
        expect(tab.locator("#activity-rows tr.event")).to_have_count(2, timeout=LIVE_WITHIN_MS)

        tab.select_option("select[name=type]", "logout")  # htmx filter request and a new socket
        tab.wait_for_url("**type=logout**")
        expect(tab.locator("#activity-rows tr.event")).to_have_count(1)
        tab.wait_for_selector('#activity-live-status[data-state="live"]')
        tab.click("#tab-overview")
        expect(tab.locator("#tab-overview")).to_have_attribute("aria-selected", "true")

        assert watch.violations() == []
        assert all("script-src 'self'" in p and "style-src 'self'" in p and "unsafe-inline" not in p
                   for p in watch.policies), watch.policies


def test_django_admin_works_under_the_csp(browser, acme, root):
    from playwright.sync_api import expect

    from activitylog.services import auth_event_record

    event = auth_event_record(user=acme.portal_user, event_type="login")
    with asgi_server(log_path=_log("server-csp-admin")) as url:
        watch = CspWatch(browser)
        page = watch.open(f"{url}/admin/login/")
        _sign_in(page, "root@platform.test")
        page.wait_for_url(f"{url}/admin/")
        for path in ("/admin/activitylog/authevent/", f"/admin/activitylog/authevent/{event.pk}/change/",
                     "/admin/clients/client/", f"/admin/clients/client/{acme.client.pk}/change/"):
            watch.goto(page, url + path)
            expect(page.locator("#content")).to_be_visible()
        # The admin's own scripts ran: the change list's "select all" ticks every row.
        watch.goto(page, url + "/admin/clients/client/")
        page.check("#action-toggle")
        expect(page.locator("input.action-select").first).to_be_checked()

        assert watch.violations() == []
        assert all("script-src 'self'" in p for p in watch.policies), watch.policies
