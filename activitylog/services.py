"""
Writes to the activity log. Every event, whatever triggered it (a portal login, the
demo seed, the simulator, a test), is appended by `auth_event_record` and nothing else.
"""

import hashlib
import zoneinfo
from contextlib import contextmanager
from datetime import datetime

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, transaction
from django.utils import timezone
from psycopg.pq import TransactionStatus

from activitylog import chain, live
from activitylog.models import REASONS_BY_EVENT_TYPE, AuthEvent, EventType
from agencyhandy.lib.client_ip import canonical_ip, client_ip
from agencyhandy.lib.prepared import prepared_statements
from agencyhandy.lib.user_agent import MAX_USER_AGENT_LENGTH, browser_and_os
from agencyhandy.unavailable import ServiceUnavailable, directly_in_fail_closed_transaction
from clients.models import Agency, Client, User


class ActivityLogUnavailable(ServiceUnavailable):
    """The event could not be written, so the action it records must not happen."""


def session_ref_for(session_key: str | None) -> str:
    """A stable reference to a session that does not reveal the session key."""
    if not session_key:
        return ""
    return hashlib.sha256(session_key.encode()).hexdigest()


@contextmanager
def recording_transaction():
    """
    The transaction an event is recorded in, with whatever its caller writes beside it
    (a login's PortalSession row): on PostgreSQL, two round trips.

    What it buys: psycopg's pipeline mode queues statements and sends them together. The
    first round trip carries BEGIN, the client's lock and the chain's head (the fetch of
    the head sends the queue); the second, the inserts and COMMIT (the pipeline's Sync).
    Each statement, savepoint, BEGIN and COMMIT used to wait for its own answer: six
    round trips a bare event, nine a login.

    Nested in another recording_transaction it adds nothing, no savepoint either: if the
    event cannot be recorded the whole transaction fails (fail closed). Inside a caller's
    own transaction it is a savepoint, as `transaction.atomic()` is, so the caller can
    carry on after ActivityLogUnavailable; directly inside a `fail_closed_transaction`
    (agencyhandy/unavailable.py), which cannot, it takes none. SQLite gets plain atomic blocks.
    """
    db = connections[DEFAULT_DB_ALIAS]  # once: each use of `connection` looks it up again
    if getattr(db, _RECORDING, False):
        yield  # the enclosing recording_transaction sends and commits it all
        return
    outermost = not db.in_atomic_block
    savepoint = not directly_in_fail_closed_transaction(db)
    setattr(db, _RECORDING, True)
    try:
        with transaction.atomic(savepoint=savepoint):
            if db.vendor != "postgresql":
                yield
            elif outermost:
                # Errors that the pipeline raises at its end are psycopg's: Django's wrapper
                # turns them into django.db errors (IntegrityError, ...), as for any query.
                with db.wrap_database_errors, _pipelined_transaction(db.connection):
                    yield
            else:
                with db.wrap_database_errors, db.connection.pipeline():  # after the SAVEPOINT, if any
                    yield
    finally:
        setattr(db, _RECORDING, False)


_RECORDING = "activitylog_recording"


@contextmanager
def _pipelined_transaction(pg):
    """
    BEGIN ... COMMIT of the atomic block around it, sent in the pipeline with the statements.

    Left to itself psycopg would send BEGIN and wait for it (it syncs a pipeline after
    BEGIN), and Django would send COMMIT after the pipeline: two more round trips. So for
    the block's length psycopg is in autocommit mode, and BEGIN and COMMIT travel in the
    pipeline like any statement. When the atomic block ends, Django's commit finds the
    connection idle (psycopg then sends nothing) and runs the on-commit hooks as always.
    An error of any queued statement, COMMIT included, is raised inside the block, and
    the transaction is rolled back here before Django sees the error.
    """
    pg.autocommit = True
    try:
        with pg.pipeline(), pg.cursor() as cursor:
            cursor.execute("BEGIN")
            yield
            cursor.execute("COMMIT")
    finally:
        if pg.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
            pg.execute("ROLLBACK")  # failed before or at COMMIT: nothing of it stays
        if pg.info.transaction_status == TransactionStatus.IDLE:
            pg.autocommit = False  # as Django left it; a broken connection is discarded anyway


def auth_event_record(
    *,
    user: User,
    event_type: str,
    ip: str | None = None,
    user_agent: str = "",
    session_ref: str = "",
    reason: str = "",
    occurred_at: datetime | None = None,
) -> AuthEvent:
    """
    Append one event to the log of `user`'s client and return it.

    The client's row is locked for the append, so concurrent events of one client queue
    up and each links to the one before (the unique (client, seq) constraint backs this
    up). `occurred_at` defaults to now, taken under the lock so a client's events are
    in time order. After commit the event is pushed to open Activity Log tabs.
    Raises ActivityLogUnavailable if the event cannot be stored. Inside a caller's
    transaction the event is a savepoint, except within a `recording_transaction` or
    directly in a `fail_closed_transaction` (the login view's), whose whole transaction
    then fails.
    """
    _check_event(user=user, event_type=event_type, reason=reason)
    user_agent = (user_agent or "")[:MAX_USER_AGENT_LENGTH]
    browser, os_name = browser_and_os(user_agent)
    row = {  # the event's fields, by attname; it becomes an AuthEvent once stored
        "client_id": user.client_id,
        "user_id": user.pk,
        "email": user.email,
        "event_type": event_type,
        # "2001:DB8::1" is stored as "2001:db8::1"; hash what is stored.
        "ip": canonical_ip(ip) if ip is not None else None,
        "user_agent": user_agent,
        "browser": browser,
        "os": os_name,
        "session_ref": session_ref,
        "reason": reason,
    }
    try:
        with recording_transaction():
            event, tz = _append_to_chain(row, occurred_at=occurred_at)
            # Open tabs hear of it only once it is durable; a rolled-back login pushes nothing.
            transaction.on_commit(lambda: live.auth_event_publish(event, tz))
    except DatabaseError as exc:
        raise ActivityLogUnavailable(f"Could not record {event_type} of {user.email}: {exc}") from exc
    return event


_EVENT_TYPES = frozenset(EventType.values)  # EventType.values builds a new list at every call


def _check_event(*, user: User, event_type: str, reason: str) -> None:
    if user.client_id is None:
        raise ValueError(f"{user} is not a portal user; only client events are logged.")
    if event_type not in _EVENT_TYPES:
        raise ValueError(f"Unknown event type {event_type!r}.")
    if reason and reason not in REASONS_BY_EVENT_TYPE.get(event_type, ()):
        raise ValueError(f"{reason!r} is not a reason for a {event_type} event.")


def _append_to_chain(row: dict, *, occurred_at: datetime | None) -> tuple[AuthEvent, zoneinfo.ZoneInfo]:
    """
    Under the client's lock: link the event of `row` (its fields by attname, those the
    caller knows) after the head of its client's chain, hash it and insert it. Returns
    the stored event, and its agency's time zone for the live row.

    Plain SQL, not the ORM: building its queries cost about as much CPU as the rest; and
    prepared (agencyhandy/lib/prepared.py), which halves PostgreSQL's CPU an event. The lock
    and the head are two statements on purpose, sent together: under READ COMMITTED one
    statement reads with the snapshot it started with, so a head read in the locking
    statement would miss the event of the writer whose lock it waited for (and fork).
    """
    postgresql = connection.vendor == "postgresql"
    with prepared_statements() as execute:
        lock = execute(_LOCK_SQL[postgresql], [row["client_id"]])
        head = execute(_HEAD_SQL[postgresql], [row["client_id"]])
        agency_id, time_zone = lock.fetchone()
        next_id, last_seq, last_hash = head.fetchone()
        row["seq"], row["prev_hash"] = (last_seq + 1, last_hash) if last_seq else (1, chain.GENESIS)
        # The id is taken before hashing (the chain covers ids), under the lock, so a client's
        # ids grow along its chain: on PostgreSQL from the table's sequence, in the head's query.
        [row["id"]] = [next_id] if postgresql else AuthEvent.objects.allocate_ids(1)
        row["agency_id"] = agency_id
        row["chain_version"] = chain.CHAIN_VERSION
        row["occurred_at"] = occurred_at or timezone.now()
        row["hash"] = chain.event_hash(row)
        execute(_INSERT_SQL, _inserted_values(row, postgresql))
    return _stored_event(row), zoneinfo.ZoneInfo(time_zone)


def _inserted_values(row: dict, postgresql: bool) -> list:
    """The INSERT's parameters; psycopg adapts PostgreSQL's as they are (all plain Python types)."""
    if postgresql:
        return [row[field.attname] for field in _INSERTED]
    return [field.get_db_prep_save(row[field.attname], connection) for field in _INSERTED]


def _stored_event(row: dict) -> AuthEvent:
    """
    The AuthEvent of a stored row: as the ORM builds one it reads, so its save() refuses it.

    What it buys: `AuthEvent(**fields)` looks each field up by name and fills the missing
    ones with defaults, about twice the CPU of `from_db`, which takes the values in order.
    """
    return AuthEvent.from_db(None, _FIELD_NAMES, [row[name] for name in _FIELD_NAMES])


_FIELD_NAMES = [field.attname for field in AuthEvent._meta.concrete_fields]  # from_db's order


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


_LOCK_SQL = {
    postgresql: (
        f"SELECT c.agency_id, a.time_zone FROM {_table(Client)} c JOIN {_table(Agency)} a ON a.id = c.agency_id"
        " WHERE c.id = %s" + (" FOR NO KEY UPDATE OF c" if postgresql else "")
    )
    for postgresql in (False, True)  # SQLite: BEGIN IMMEDIATE already holds the write lock
}
_HEAD_SQL = {
    postgresql: (
        f"SELECT {next_id}, h.seq, h.hash FROM (SELECT 1) one LEFT JOIN"
        f" (SELECT seq, hash FROM {_table(AuthEvent)} WHERE client_id = %s ORDER BY seq DESC LIMIT 1) h ON true"
    )
    for postgresql, next_id in (
        (False, "NULL"),  # SQLite: AuthEvent.objects.allocate_ids, after it
        (True, f"nextval(pg_get_serial_sequence('{AuthEvent._meta.db_table}', 'id'))"),
    )
}
_INSERTED = [AuthEvent._meta.get_field(name) for name in ("id", "chain_version", "hash", *chain.HASHED_FIELDS)]
_INSERT_SQL = (
    f"INSERT INTO {_table(AuthEvent)} ({', '.join(connection.ops.quote_name(f.column) for f in _INSERTED)})"
    f" VALUES ({', '.join(['%s'] * len(_INSERTED))})"
)


def auth_event_record_from_request(
    *, request, user: User, event_type: str, reason: str = ""
) -> AuthEvent:
    """Record an event with the IP, user agent and session taken from `request` (may be None)."""
    meta = request.META if request is not None else {}
    session = getattr(request, "session", None)
    # A failed attempt has no session of its own to pair with.
    with_session = session is not None and event_type != EventType.LOGIN_FAILED
    return auth_event_record(
        user=user,
        event_type=event_type,
        ip=client_ip(meta),
        user_agent=meta.get("HTTP_USER_AGENT", ""),
        session_ref=session_ref_for(session.session_key) if with_session else "",
        reason=reason,
    )
