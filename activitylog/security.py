"""
Security signals of the Activity Log: why can't they get in? Reads only.

- `row_signals`: the marks of a page of rows, in one query with an index probe per row:
  *New IP* and *New device* (a sign-in from an IP, or a browser and OS, that this portal
  user has never signed in from before), *Burst* (one of many failures close together)
  and *Locked out*.
- `failure_summary`: the tab's summary of failed sign-ins.
- `event_details`: what an expanded row shows: the login or logout it pairs with and the
  session's length, and the other events from the same IP around it.

The rules, and the index each query uses, are in docs/architecture.md ("Security signals").
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from django.db import connection
from django.db.models import BooleanField, Case, Count, Exists, OuterRef, Q, QuerySet, Subquery, Value, When
from django.utils import timezone

from activitylog.models import AuthEvent, EventType, FailureReason, PortalSession, versionless
from agencyhandy.lib.prepared import prepared_statements
from clients.models import Client

# A failure is part of a burst when, within BURST_WINDOW either side of it, its portal user
# (or its IP) has at least BURST_FAILURES failures, itself included. The same 5 that lock
# an account out from one IP (LOGIN_FAILURE_LIMIT's default), here across IPs as well.
BURST_FAILURES = 5
BURST_WINDOW = timedelta(minutes=10)
# An expanded row lists up to this many other events from its IP, the nearest in time,
# within this long before or after it.
SAME_IP_LIMIT = 10
SAME_IP_SPAN = timedelta(days=7)
FAILURE_SUMMARY_DAYS = 7

# Marked New IP / New device: sign-in attempts. A logout or an expiry belongs to a login.
_MARKED_TYPES = (EventType.LOGIN, EventType.LOGIN_FAILED)
_NOT_LOCKOUT = ~Q(reason=FailureReason.LOCKED_OUT)


@dataclass(frozen=True)
class RowSignals:
    new_ip: bool = False
    new_device: bool = False
    burst: bool = False
    lockout: bool = False


NO_SIGNALS = RowSignals()


def signals_query(ids: list[int]) -> QuerySet:
    """
    (id, new_ip, new_device, burst) of the events `ids`. Each mark is an EXISTS with a
    LIMIT, one index probe per row: a page costs the same at 1 k and at 1 M events.
    """
    earlier_logins = AuthEvent.objects.filter(
        event_type=EventType.LOGIN, user_id=OuterRef("user_id"), occurred_at__lt=OuterRef("occurred_at")
    ).order_by()
    known_ip = earlier_logins.filter(ip=OuterRef("ip"))  # authevent_user_ip_login
    known_device = earlier_logins.alias(  # authevent_user_device_login
        device_browser=versionless("browser"), device_os=versionless("os"),
    ).filter(device_browser=versionless(OuterRef("browser")), device_os=versionless(OuterRef("os")))
    near = AuthEvent.objects.filter(  # failures within the window either side
        _NOT_LOCKOUT, client_id=OuterRef("client_id"), event_type=EventType.LOGIN_FAILED,
        occurred_at__gte=OuterRef("occurred_at") - BURST_WINDOW,
        occurred_at__lte=OuterRef("occurred_at") + BURST_WINDOW,
    ).order_by()
    nth = slice(BURST_FAILURES - 1, BURST_FAILURES)  # EXISTS ... OFFSET 4 LIMIT 1: "at least 5"
    burst = Exists(near.filter(user_id=OuterRef("user_id"))[nth]) | Exists(near.filter(ip=OuterRef("ip"))[nth])
    attempt = Q(event_type__in=_MARKED_TYPES) & _NOT_LOCKOUT
    return AuthEvent.objects.filter(id__in=ids).order_by().annotate(
        new_ip=_when(attempt & Q(ip__isnull=False), ~Exists(known_ip)),
        new_device=_when(attempt & ~Q(browser="", os=""), ~Exists(known_device)),
        burst=_when(Q(event_type=EventType.LOGIN_FAILED) & _NOT_LOCKOUT, burst),
    ).values_list("id", "new_ip", "new_device", "burst")


def _when(condition: Q, then) -> Case:
    # CASE: the probes run only for the rows they concern.
    return Case(When(condition, then=then), default=Value(False), output_field=BooleanField())


def row_signals(events: list[AuthEvent]) -> dict[int, RowSignals]:
    """The signals of each event, by id: one query for the whole list."""
    if not events:
        return {}
    by_id = {event.pk: event for event in events}
    return {
        pk: RowSignals(new_ip=bool(new_ip), new_device=bool(new_device), burst=bool(burst),
                       lockout=_is_lockout(by_id[pk]))
        for pk, new_ip, new_device, burst in _run_signals_query(list(by_id))
    }


def _run_signals_query(ids: list[int]) -> list[tuple]:
    """
    The rows of `signals_query(ids)`, from SQL compiled once per number of ids.

    What it buys: the ORM takes about 3 ms to build and compile that query (four
    correlated subqueries), four times what PostgreSQL takes to run it on a page of 50
    rows; the tab and every pushed live row would pay it. Sentinel ids stand in for the
    real ones when it is compiled, and are swapped for them in the parameters.
    """
    sql, params = _compiled_signals_query(connection.vendor, len(ids))
    real = dict(zip(_sentinels(len(ids)), ids, strict=True))
    with prepared_statements() as execute:  # and prepared: planning it costs PostgreSQL 3× running it
        return execute(sql, [real.get(p, p) if isinstance(p, int) else p for p in params]).fetchall()


def _sentinels(count: int) -> list[int]:
    # Negative, so no real id or other parameter of the query can be mistaken for one.
    return [-7_000_000_000 - n for n in range(count)]


@lru_cache(maxsize=128)
def _compiled_signals_query(vendor: str, count: int) -> tuple[str, tuple]:
    return signals_query(_sentinels(count)).query.sql_with_params()


def _is_lockout(event: AuthEvent) -> bool:
    return event.event_type == EventType.LOGIN_FAILED and event.reason == FailureReason.LOCKED_OUT


# The summary -------------------------------------------------------------------------


@dataclass(frozen=True)
class FailureSummary:
    failed_7d: int  # failed sign-ins, lockouts not counted: a lockout is no attempt
    lockouts_7d: int
    last_failure: AuthEvent | None  # a lockout too: it is why they cannot get in


def failure_counts_query(*, client: Client, now: datetime | None = None) -> QuerySet:
    """
    One row at most: the client's last failed sign-in, with `failed` and `lockouts`, the
    counts since FAILURE_SUMMARY_DAYS ago. One round trip; each part reads the
    (client, event_type, occurred_at) index, the counts index-only (it includes the
    reason, which tells a lockout from an attempt). No failure ever: no row.
    """
    since = (now or timezone.now()) - timedelta(days=FAILURE_SUMMARY_DAYS)
    failures = AuthEvent.objects.filter(client_id=client.pk, event_type=EventType.LOGIN_FAILED)
    recent = failures.filter(occurred_at__gte=since).order_by().values("client_id")  # one group

    def count(condition: Q) -> Subquery:
        return Subquery(recent.annotate(n=Count("occurred_at", filter=condition)).values("n"))

    return (
        failures.order_by("-occurred_at")
        .only("occurred_at", "reason", "email", "event_type")
        .annotate(failed=count(_NOT_LOCKOUT), lockouts=count(~_NOT_LOCKOUT))[:1]
    )


def failure_summary(*, client: Client, now: datetime | None = None) -> FailureSummary:
    """Failed sign-ins and lockouts in the last 7 days, and the last failed attempt."""
    last = next(iter(failure_counts_query(client=client, now=now)), None)
    if last is None:
        return FailureSummary(failed_7d=0, lockouts_7d=0, last_failure=None)
    return FailureSummary(failed_7d=last.failed or 0, lockouts_7d=last.lockouts or 0, last_failure=last)


# An expanded row ---------------------------------------------------------------------


@dataclass(frozen=True)
class EventDetails:
    event: AuthEvent
    signals: RowSignals
    login: AuthEvent | None  # the session's login: this event, or the one it pairs with
    ending: AuthEvent | None  # the session's logout or expiry
    still_open: bool  # a login whose session has not ended yet
    same_ip: list[AuthEvent]  # other events of this client from this IP, newest first

    @property
    def session_length(self) -> timedelta | None:
        if self.login is None or self.ending is None:
            return None
        return self.ending.occurred_at - self.login.occurred_at


def event_details(*, client: Client, event_id: int) -> EventDetails | None:
    """The details of one of the client's events, or None if the client has no such event."""
    event = AuthEvent.objects.filter(client_id=client.pk, pk=event_id).first()
    if event is None:
        return None
    login, ending = _session_pair(event)
    still_open = (
        login is not None and ending is None
        and PortalSession.objects.filter(session_ref=login.session_ref).exists()
    )
    return EventDetails(
        event=event, signals=row_signals([event]).get(event.pk, NO_SIGNALS), login=login, ending=ending,
        still_open=still_open, same_ip=_nearest_from_same_ip(event),
    )


def _session_pair(event: AuthEvent) -> tuple[AuthEvent | None, AuthEvent | None]:
    """(login, logout or expiry) of the event's session, through its session_ref."""
    if not event.session_ref or event.event_type == EventType.LOGIN_FAILED:
        return None, None
    # The unique (session_ref, event_type) index: a session has one of each.
    others = {
        e.event_type: e
        for e in AuthEvent.objects.filter(client_id=event.client_id, session_ref=event.session_ref)
        .exclude(pk=event.pk).exclude(event_type=EventType.LOGIN_FAILED)
    }
    others[event.event_type] = event
    ending = others.get(EventType.LOGOUT) or others.get(EventType.SESSION_EXPIRED)
    return others.get(EventType.LOGIN), ending


def same_ip_query(*, event: AuthEvent, before: bool) -> QuerySet:
    """The client's other events from the event's IP within SAME_IP_SPAN before (or after) it, nearest first."""
    events = AuthEvent.objects.filter(client_id=event.client_id, ip=event.ip).exclude(pk=event.pk)
    if before:  # authevent_client_ip_time, read backwards from the event
        events = events.filter(occurred_at__lte=event.occurred_at, occurred_at__gte=event.occurred_at - SAME_IP_SPAN)
        return events.order_by("-occurred_at", "-id")[:SAME_IP_LIMIT]
    events = events.filter(occurred_at__gt=event.occurred_at, occurred_at__lte=event.occurred_at + SAME_IP_SPAN)
    return events.order_by("occurred_at", "id")[:SAME_IP_LIMIT]


def _nearest_from_same_ip(event: AuthEvent) -> list[AuthEvent]:
    """Up to SAME_IP_LIMIT of the client's other events from this IP, the nearest in time, newest first."""
    if event.ip is None:
        return []
    candidates = [*same_ip_query(event=event, before=True), *same_ip_query(event=event, before=False)]
    nearest = sorted(candidates, key=lambda e: abs(e.occurred_at - event.occurred_at))[:SAME_IP_LIMIT]
    return sorted(nearest, key=lambda e: (e.occurred_at, e.pk), reverse=True)
