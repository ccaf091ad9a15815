"""
The Activity Log tab as an agency manager uses it, in real Chromium against the
production server (daphne, DEBUG off, Redis when reachable): filters that send one
request per burst of changes, "Load older" that keeps its place, live rows that are
announced and offered to a viewer scrolled down, a stop that says why, and a phone
layout that shows the first event without scrolling.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from activitylog.models import EventType
from activitylog.services import auth_event_record
from tests.conftest import PASSWORD
from tests.servers import asgi_server
from tests.test_browser import ARTIFACTS, LIVE_WITHIN_MS, _log, portal_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("server_passwords")]


def _events(acme, count: int) -> list:
    start = timezone.now() - timedelta(hours=count)
    return [
        auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN if i % 2 else EventType.LOGOUT,
                          occurred_at=start + timedelta(hours=i), ip="203.0.113.7")
        for i in range(count)
    ]


def _tab(browser, url: str, acme, *, width: int = 1366, height: int = 900, query: str = ""):
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.goto(f"{url}/login/?next=/clients/{acme.client.pk}/activity/{query}")
    page.fill("#id_username", "manager@acme.test")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector('#activity-live-status[data-state="live"]', timeout=LIVE_WITHIN_MS)
    page.wait_for_load_state("load")  # app.js (deferred) listens from here on
    return page


def test_arrow_keys_through_a_select_send_one_request_and_chips_remove_filters(browser, acme):
    from playwright.sync_api import expect

    _events(acme, 4)
    with asgi_server(log_path=_log("server-tab-filters")) as url:
        page = _tab(browser, url, acme)
        requests = []
        page.on("request", lambda r: requests.append(r.url) if "/activity/?" in r.url else None)

        page.focus("select[name=type]")
        for _ in range(3):
            page.keyboard.press("ArrowDown")
        page.wait_for_url("**type=**")
        expect(page.locator("#activity-count")).to_contain_text("match these filters")
        page.wait_for_load_state("networkidle")
        assert len(requests) == 1, requests
        chosen = page.locator("select[name=type]").input_value()
        assert f"type={chosen}" in requests[0]

        page.locator(".chip").first.click()
        page.wait_for_url(f"**/clients/{acme.client.pk}/activity/")
        expect(page.locator(".chip")).to_have_count(0)
        expect(page.locator("select[name=type]")).to_have_value("")
        expect(page.locator("#activity-count")).to_have_text("4 events in all")


def test_load_older_keeps_its_place_in_the_address_and_focus_on_the_first_new_row(browser, acme):
    from playwright.sync_api import expect

    events = _events(acme, 55)  # a page is 50
    with asgi_server(log_path=_log("server-tab-older")) as url:
        page = _tab(browser, url, acme)
        page.click("#load-older a")
        first_older = page.locator(f"#event-{events[4].pk}")
        expect(first_older).to_be_focused()
        assert "cursor=" in page.url
        page.reload()  # a reload (or the link, shared) lands on the older rows
        expect(page.locator("#activity-rows tr.event").first).to_have_attribute("id", f"event-{events[4].pk}")
        expect(page.locator("caption")).to_contain_text("Older portal activity")


def test_a_viewer_scrolled_down_is_offered_new_rows_which_are_announced(browser, acme):
    from playwright.sync_api import expect

    _events(acme, 40)
    with asgi_server(log_path=_log("server-tab-new-rows")) as url:
        page = _tab(browser, url, acme)
        page.mouse.wheel(0, 3000)
        # A locator's expectation, not wait_for_function: the page's CSP forbids the eval
        # that a string predicate's retries need.
        expect(page.locator("#activity-rows tr.event").first).not_to_be_in_viewport()
        assert abs(page.locator("#activity-filters").bounding_box()["y"]) <= 1  # the filter bar stays in reach

        client = portal_page(browser, url, "client@acme.test")
        client.click("button[type=submit]")
        client.wait_for_url("**/portal/")

        control = page.locator("#activity-new-events")
        expect(control).to_be_visible(timeout=LIVE_WITHIN_MS)
        expect(control).to_have_text("1 new event ↑")
        expect(page.locator("#activity-announcer")).to_have_text("New event: Login by client@acme.test")
        page.screenshot(path=str(ARTIFACTS / "tab-new-events-1366.png"))
        control.click()
        expect(control).to_be_hidden()
        expect(page.locator("#activity-rows tr.event").first).to_be_focused()


def test_a_tab_whose_viewer_signs_out_says_so_and_offers_to_sign_in_again(browser, acme):
    from playwright.sync_api import expect

    with asgi_server(log_path=_log("server-tab-signed-out")) as url:
        page = _tab(browser, url, acme)
        other = page.context.new_page()  # another tab of the same browser
        other.goto(f"{url}/clients/")
        other.click("text=Sign out")

        status = page.locator("#activity-live-status")
        expect(status).to_have_text("Live updates stopped: you were signed out.", timeout=LIVE_WITHIN_MS)
        action = page.locator("#activity-live-action")
        expect(action).to_have_text("Sign in again")
        action.click()
        page.wait_for_url("**/login/?next=**")
        page.fill("#id_username", "manager@acme.test")
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"**/clients/{acme.client.pk}/activity/")
        expect(status).to_have_attribute("data-state", "live", timeout=LIVE_WITHIN_MS)


def test_on_a_phone_the_first_event_shows_without_scrolling(browser, acme):
    from playwright.sync_api import expect

    _events(acme, 3)
    with asgi_server(log_path=_log("server-tab-phone")) as url:
        page = _tab(browser, url, acme, width=390, height=844)
        first = page.locator("#activity-rows tr.event").first
        expect(first).to_be_in_viewport()
        box = first.bounding_box()
        assert box["y"] + 120 < 844, box  # its event, time and user, not only its top edge
        page.screenshot(path=str(ARTIFACTS / "tab-phone-390.png"))
        page.click("text=Filters and export")  # the folded filters open in place
        expect(page.locator("select[name=type]")).to_be_visible()


def test_an_empty_tab_shows_no_table_or_caption(browser, acme):
    from playwright.sync_api import expect

    with asgi_server(log_path=_log("server-tab-empty")) as url:
        for width in (1366, 390):
            page = _tab(browser, url, acme, width=width)
            expect(page.locator("#activity-empty")).to_be_visible()
            expect(page.locator("caption")).to_be_hidden()
            expect(page.locator("#activity-count")).to_have_text("0 events in all")
            page.context.close()
