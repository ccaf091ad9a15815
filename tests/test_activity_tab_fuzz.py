"""
Whatever a signed-in Manager or Admin puts in the Activity Log tab's query string (or
its CSV download's), the answer is a page or a clear 4xx, never a 5xx. Property-based:
hypothesis writes the query strings, down to bytes that are not UTF-8.
"""

from urllib.parse import quote, quote_from_bytes

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from hypothesis import given, settings
from hypothesis import strategies as st

from activitylog.models import EventType, FailureReason
from activitylog.selectors import Keyset
from activitylog.services import auth_event_record

PARAMETERS = ["type", "user", "date_from", "date_to", "cursor"]
HTMX_HEADERS = st.sampled_from([
    {}, {"HTTP_HX_REQUEST": "true"},
    {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "activity-results"},
    {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "\x00"},
])


def _well_formed(user_ids: list[int], cursor: str) -> dict:
    """Values of the right shape for each parameter, the edges of their ranges included."""
    dates = st.one_of(
        st.sampled_from(["0001-01-01", "1970-01-01", "9998-12-31", "9999-12-31"]),
        st.dates().map(str),
    )
    return {
        "type": st.sampled_from([*EventType.values, ""]),
        "user": st.sampled_from([*map(str, user_ids), ""]),
        "date_from": dates,
        "date_to": dates,
        "cursor": st.sampled_from([cursor, ""]),
    }


# Anything at all: text, or bytes that need not be UTF-8 (percent-encoded, as on the wire).
anything = st.one_of(
    st.text(max_size=30),
    st.binary(max_size=30),
    st.sampled_from(["-1", "1e3", "٣", "99999999999999999999999", "2026-02-30", "20260301", " login", "a" * 201]),
)


def _encode(value: str | bytes) -> str:
    return quote_from_bytes(value) if isinstance(value, bytes) else quote(value)


def _query(data, user_ids: list[int], cursor: str) -> str:
    """Each parameter absent, well formed or anything (2:2:1), then perhaps some unknown or repeated ones."""
    pairs = []
    for name, well_formed in _well_formed(user_ids, cursor).items():
        kind = data.draw(st.sampled_from(["absent", "absent", "well formed", "well formed", "anything"]))
        if kind != "absent":
            pairs.append((name, data.draw(well_formed if kind == "well formed" else anything)))
    names = st.one_of(st.text(max_size=10), st.sampled_from(PARAMETERS))
    pairs += data.draw(st.lists(st.tuples(names, anything), max_size=2))
    return "&".join(f"{_encode(name)}={_encode(value)}" for name, value in pairs)


@pytest.fixture
def log(acme):
    for n in range(60):  # more than a page, so that there are cursors
        auth_event_record(user=acme.portal_user if n % 2 else acme.portal_member, event_type=EventType.LOGIN_FAILED,
                          reason=FailureReason.BAD_PASSWORD, ip=f"203.0.113.{n + 1}")
    return acme


@pytest.fixture
def cursor(log) -> str:
    event = log.client.auth_events.order_by("-occurred_at", "-id")[10]
    return Keyset(event.occurred_at, event.pk).encode()


@pytest.fixture(autouse=True)
async def _thread_connections_closed():
    """The views' database work runs in a worker thread with its own connection: close it at the end."""
    yield
    await sync_to_async(connections.close_all)()


async def _body(response) -> bytes:
    if response.streaming and response.is_async:
        # The CSV is made while it streams: an error there would only show now.
        return b"".join([chunk async for chunk in response.streaming_content])
    return response.content


@pytest.mark.django_db(transaction=True)  # the views' worker thread reads committed rows
@pytest.mark.parametrize("role", ["manager", "admin"])
@settings(max_examples=150)  # quick requests: room for more than the suite's default
@given(data=st.data())
async def test_no_query_string_makes_the_tab_or_its_download_fail(data, async_client, log, cursor, role):
    await async_client.aforce_login(getattr(log, role))
    user_ids = [log.portal_user.pk, log.portal_member.pk]
    for path in (f"/clients/{log.client.pk}/activity/", f"/clients/{log.client.pk}/activity/export.csv"):
        query = _query(data, user_ids, cursor)
        response = await async_client.get(path, QUERY_STRING=query, **data.draw(HTMX_HEADERS))
        await _body(response)
        assert response.status_code < 500, (path, query, response.status_code)
