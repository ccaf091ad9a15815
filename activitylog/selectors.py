"""Reads of the activity log for the staff UI and ops exports."""

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from django.core import signing
from django.db.models import (
    Count,
    Exists,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from activitylog.access import may_read_logs
from activitylog.models import AuthEvent, EventType
from clients.models import Client, StaffMembership, User

_CURSOR_SALT = "activitylog.cursor.v1"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class Keyset:
    """Position of the last row shown: the next page starts strictly after it."""

    occurred_at: datetime
    id: int

    def encode(self) -> str:
        # Whole microseconds: a float timestamp would round and skip or repeat rows.
        micros = (self.occurred_at - _EPOCH) // _MICROSECOND
        return signing.dumps([micros, self.id], salt=_CURSOR_SALT, compress=False)

    @classmethod
    def decode(cls, token: str) -> "Keyset":
        try:
            micros, event_id = signing.loads(token, salt=_CURSOR_SALT)
            for value in (micros, event_id):
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise TypeError
            occurred_at = _EPOCH + micros * _MICROSECOND
        except (signing.BadSignature, TypeError, ValueError, OverflowError, OSError) as exc:
            raise BadCursor("This “Load older” link is invalid or was altered.") from exc
        return cls(occurred_at, event_id)


# What each lookup that EventFilters uses means in Python.
_LOOKUPS = {"exact": operator.eq, "gte": operator.ge, "lt": operator.lt, "in": lambda value, group: value in group}


@dataclass(frozen=True)
class EventFilters:
    """
    The Activity Log tab's filters, defined once for both of their uses: `condition()`
    narrows the queries (the page, a resync, the CSV download) and `matches()` tests one
    event pushed live, so a live row is one that the page shows after a reload.
    """

    event_type: str = ""
    user_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    since: datetime | None = None  # a quick range ("last 24 hours") worked out to its start
    ip: str = ""
    user_ids: frozenset[int] | None = None  # the portal users a search by email found

    def condition(self, tz: tzinfo) -> Q:
        """The filter as a queryset condition; the dates are whole days in `tz`."""
        return Q(*(Q(**{f"{field}__{lookup}": value}) for field, lookup, value in self._terms(tz)))

    def matches(self, event: Mapping[str, Any], tz: tzinfo) -> bool:
        """Whether an event (its event_type, user_id, ip and aware occurred_at) meets `condition(tz)`."""
        return self.matcher(tz)(event)

    def matcher(self, tz: tzinfo) -> Callable[[Mapping[str, Any]], bool]:
        """`matches` with the terms worked out once: a socket tests every pushed event with it."""
        tests = [(field, _LOOKUPS[lookup], value) for field, lookup, value in self._terms(tz)]
        return lambda event: all(test(event[field], value) for field, test, value in tests)

    def _terms(self, tz: tzinfo) -> list[tuple[str, str, Any]]:
        """(field, lookup, value) terms that an event must all meet."""
        terms = []
        if self.event_type:
            terms.append(("event_type", "exact", self.event_type))
        if self.user_id:
            terms.append(("user_id", "exact", self.user_id))
        if self.user_ids is not None:
            terms.append(("user_id", "in", self.user_ids))
        if self.ip:
            terms.append(("ip", "exact", self.ip))
        if self.since:
            terms.append(("occurred_at", "gte", self.since))
        if self.date_from:
            terms.append(("occurred_at", "gte", datetime.combine(self.date_from, time.min, tzinfo=tz)))
        if self.date_to:
            day_after = self.date_to + timedelta(days=1)
            terms.append(("occurred_at", "lt", datetime.combine(day_after, time.min, tzinfo=tz)))
        return terms


def auth_events_filtered(*, client: Client, filters: EventFilters, tz: tzinfo):
    """A client's events matching the tab's filters."""
    return AuthEvent.objects.filter(filters.condition(tz), client_id=client.pk)


def auth_events_count(*, client: Client, filters: EventFilters, tz: tzinfo, cap: int) -> int:
    """
    How many events match. Unfiltered, exactly: the length of the client's chain, whose
    events are numbered 1, 2, 3... with no gap (verify_activity_log proves it), so the
    newest one's `seq` is one probe of the (client, seq) index, whatever the client's size.
    Filtered, it counts no further than `cap + 1`: a result above `cap` means "more than
    cap". Counting every matching event of a client with millions takes seconds; this
    reads at most cap + 1 entries of an index.
    """
    if filters == EventFilters():
        newest = AuthEvent.objects.filter(client_id=client.pk).order_by("-seq").values_list("seq", flat=True)
        return newest.first() or 0
    matching = auth_events_filtered(client=client, filters=filters, tz=tz).order_by()
    return matching.values("occurred_at")[: cap + 1].count()


def auth_events_page(
    *, client: Client, filters: EventFilters, tz: tzinfo, after: Keyset | None, limit: int
) -> tuple[list[AuthEvent], Keyset | None]:
    """
    One page of events, newest first, and the keyset of the next page (None at the end).

    Keyset pagination: the cost of a page does not grow with how far back it is.
    The redundant `occurred_at <= t` bound lets the (client, occurred_at, id) index
    start the scan at the cursor instead of filtering every newer row.
    """
    events = auth_events_filtered(client=client, filters=filters, tz=tz)
    if after is not None:
        events = events.filter(
            Q(occurred_at__lte=after.occurred_at),
            Q(occurred_at__lt=after.occurred_at) | Q(id__lt=after.id),
        )
    rows = _with_session_start(list(events.order_by("-occurred_at", "-id")[: limit + 1]))
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, Keyset(last.occurred_at, last.id)


def auth_events_since(*, client: Client, filters: EventFilters, tz: tzinfo, after_id: int,
                      limit: int) -> list[AuthEvent]:
    """
    Up to `limit` events recorded after event `after_id`, newest first: what a tab that
    reconnects has missed. Per client, ids follow the order of recording (the client's
    row lock serialises its appends), so nothing committed later has a smaller id.
    """
    events = auth_events_filtered(client=client, filters=filters, tz=tz).filter(id__gt=after_id)
    return _with_session_start(list(events.order_by("-occurred_at", "-id")[:limit]))


def auth_event_ids_since(*, client: Client, filters: EventFilters, tz: tzinfo, after_id: int,
                         limit: int) -> list[int]:
    """
    The ids of up to `limit` matching events recorded after event `after_id`, oldest first:
    what a live tab's catch-up compares with what it was pushed. A primary-key range read.
    """
    events = auth_events_filtered(client=client, filters=filters, tz=tz).filter(id__gt=after_id)
    return list(events.order_by("id").values_list("id", flat=True)[:limit])


def auth_events_by_id(*, client: Client, ids: list[int]) -> list[AuthEvent]:
    """The client's events with these ids, newest first, as the tab's rows need them."""
    events = AuthEvent.objects.filter(client_id=client.pk, id__in=ids)
    return _with_session_start(list(events.order_by("-occurred_at", "-id")))


def _with_session_start(events: list[AuthEvent]) -> list[AuthEvent]:
    """
    On each session_expired event, the login it closes (`session_login_id`,
    `session_login_at`; None on other events), so the tab can say which session ended.
    One query on the unique (session_ref, event_type) index for a list with expiries, and
    none for a list without: most pages have none, and an annotation would cost every page
    its correlated subquery's compilation (about a millisecond of Python).
    """
    def is_expiry(event: AuthEvent) -> bool:
        return event.event_type == EventType.SESSION_EXPIRED and bool(event.session_ref)

    expiries = [event for event in events if is_expiry(event)]
    logins = {}
    if expiries:
        logins = {
            ref: (pk, at) for ref, pk, at in AuthEvent.objects.filter(
                client_id__in={event.client_id for event in expiries},
                session_ref__in={event.session_ref for event in expiries}, event_type=EventType.LOGIN,
            ).values_list("session_ref", "id", "occurred_at")
        }
    for event in events:
        found = is_expiry(event) and logins.get(event.session_ref)
        event.session_login_id, event.session_login_at = found or (None, None)
    return events


@dataclass(frozen=True)
class LoginSummary:
    last_login: datetime | None
    logins_7d: int
    logins_30d: int


def login_summary(*, client: Client, now: datetime | None = None) -> LoginSummary:
    """
    Last login and recent login counts: one index-only read of the last 30 days' logins on
    the (client, type, time) index, and a second probe for the last login only when it is
    older than that.
    """
    now = now or timezone.now()
    logins = AuthEvent.objects.filter(client_id=client.pk, event_type=EventType.LOGIN)
    # Count a column of the (client, event_type, occurred_at) index, not id: counting id
    # made PostgreSQL visit the heap for every login (23 ms for a client with 20 k logins
    # in 30 days) instead of an index-only scan (5 ms).
    recent = logins.filter(occurred_at__gte=now - timedelta(days=30)).aggregate(
        d30=Count("occurred_at"), d7=Count("occurred_at", filter=Q(occurred_at__gte=now - timedelta(days=7))),
        last=Max("occurred_at"),
    )
    last = recent["last"] or logins.order_by("-occurred_at").values_list("occurred_at", flat=True).first()
    return LoginSummary(last_login=last, logins_7d=recent["d7"], logins_30d=recent["d30"])


def auth_events_for_export(
    *,
    agency_ids: Iterable[int] = (),
    client_ids: Iterable[int] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    event_types: Iterable[str] = (),
):
    """
    Events across agencies for ops exports. Each given option narrows the result: any of
    the agencies, and any of the clients, and `since <= occurred_at < until`, and any of
    the types. Served by the (agency, occurred_at) and (client, occurred_at, id) indexes.
    """
    events = AuthEvent.objects.all()
    if agency_ids:
        events = events.filter(agency_id__in=list(agency_ids))
    if client_ids:
        events = events.filter(client_id__in=list(client_ids))
    if since is not None:
        events = events.filter(occurred_at__gte=since)
    if until is not None:
        events = events.filter(occurred_at__lt=until)
    if event_types:
        events = events.filter(event_type__in=list(event_types))
    return events


# What the clients pages show of the log ----------------------------------------------
# The one edge from the clients app into this one (clients/views.py): the Clients list's
# engagement columns and Last seen filter, and the Overview tab's summary and portal
# users' logins. Everything else depends one way.


ENGAGEMENT_WINDOW = timedelta(days=30)


def _logins_of_client():
    return AuthEvent.objects.filter(client_id=OuterRef("pk"), event_type=EventType.LOGIN)


def _logins_of_user():
    return AuthEvent.objects.filter(user_id=OuterRef("pk"), event_type=EventType.LOGIN)


def _last(logins: QuerySet[AuthEvent]) -> Subquery:
    return Subquery(logins.order_by("-occurred_at").values("occurred_at")[:1])


def _count(logins: QuerySet[AuthEvent], *, group_by: str) -> Coalesce:
    # Count occurred_at, a column of the index, so the count is an index-only scan (see
    # login_summary); a group without logins is no row, hence the Coalesce.
    counted = logins.order_by().values(group_by).annotate(n=Count("occurred_at")).values("n")
    return Coalesce(Subquery(counted), 0)


def clients_with_last_login(clients: QuerySet[Client]) -> QuerySet[Client]:
    """`clients`, each annotated with `last_login`: the time of its newest portal login, or None."""
    # One index probe per client on (client, event_type, occurred_at).
    return clients.annotate(last_login=_last(_logins_of_client()))


def clients_with_engagement(clients: QuerySet[Client], *, now: datetime) -> QuerySet[Client]:
    """
    `clients` annotated with `last_login` (or None) and `logins_30d`, the portal logins in
    the 30 × 24 hours up to `now`: the Clients list's engagement columns.

    Both are correlated subqueries on the (client, event_type, occurred_at) index: a probe
    for the last login, an index-only range count for the 30 days. PostgreSQL evaluates
    them for the rows it returns, so a page sorted by name counts 50 clients, not the
    agency's; sorting by either column evaluates them for every client of the agency.
    """
    recent = _logins_of_client().filter(occurred_at__gte=now - ENGAGEMENT_WINDOW)
    return clients_with_last_login(clients).annotate(logins_30d=_count(recent, group_by="client_id"))


def clients_not_seen(clients: QuerySet[Client], *, days: int | None, now: datetime) -> QuerySet[Client]:
    """
    The `clients` without a portal login in the `days` × 24 hours up to `now`, including
    those that never logged in; with `days=None`, only those that never logged in.
    One index probe per client (NOT EXISTS on the (client, event_type, occurred_at) index).
    """
    logins = _logins_of_client()
    if days is not None:
        logins = logins.filter(occurred_at__gte=now - timedelta(days=days))
    return clients.filter(~Exists(logins))


def may_see_login_facts(membership: StaffMembership | None) -> bool:
    """Whether the clients pages show this role facts from the log: last logins, counts, Last seen."""
    return may_read_logs(membership)


def login_summary_for_staff(*, membership: StaffMembership, client: Client) -> LoginSummary | None:
    """The Overview tab's login summary, or None for a role that may not read the log."""
    return login_summary(client=client) if may_read_logs(membership) else None


# The Overview counts a portal user's logins of all time up to this many, then says "10,000+".
LOGIN_COUNT_CAP = 10_000


class _RowsUpTo(Subquery):
    """How many rows a subquery sliced to `[:cap + 1]` returns: a count that stops past the cap."""

    template = "(SELECT count(*) FROM (%(subquery)s) AS _rows)"
    output_field = IntegerField()


def portal_users_with_logins(*, client: Client, now: datetime) -> QuerySet[User]:
    """
    The client's portal users by email, each annotated with `last_login_at` (or None; the
    model's own `last_login` is Django's, not the log's), `logins_30d` (the 30 × 24 hours
    up to `now`) and `logins`, all time but counted only up to LOGIN_COUNT_CAP + 1.

    Each is one probe or one index-only scan on the (user, event_type, occurred_at) index.
    The cap is what keeps the page cheap: counting every login of a user with 235,000 of
    them took 150 ms (the benchmark's whale); counting to the cap took 6 ms.
    """
    logins = _logins_of_user()
    recent = logins.filter(occurred_at__gte=now - ENGAGEMENT_WINDOW)
    return client.portal_users.order_by("email").annotate(
        last_login_at=_last(logins),
        logins=_RowsUpTo(logins.order_by().values("occurred_at")[: LOGIN_COUNT_CAP + 1]),
        logins_30d=_count(recent, group_by="user_id"),
    )


def portal_users_for_staff(*, membership: StaffMembership, client: Client, now: datetime) -> QuerySet[User]:
    """The Overview tab's portal users: with their login facts for a role that may read the log."""
    if may_read_logs(membership):
        return portal_users_with_logins(client=client, now=now)
    return client.portal_users.order_by("email")
