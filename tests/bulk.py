"""
Volume for the tests that need it (streaming exports, flat memory, Ctrl-C halfway).

The recording service takes a row lock and several round trips per event, which is right
for production and far too slow to write tens of thousands of events in a test. This
writes exactly the rows the service would write (same fields, same hash chain, so
verify_activity_log accepts them) in one batch. Use it only for volume.
"""

from datetime import datetime, timedelta

from django.db import connection, transaction

from activitylog import chain
from activitylog.models import AuthEvent, EventType
from agencyhandy.lib.user_agent import browser_and_os

_COLUMNS = (
    "id", "chain_version", "agency_id", "client_id", "user_id", "email", "event_type", "occurred_at", "ip",
    "user_agent", "browser", "os", "session_ref", "reason", "seq", "prev_hash", "hash",
)


def record_in_bulk(user, count: int, *, start: datetime, step: timedelta = timedelta(seconds=1),
                   user_agent: str = "", ip: str = "203.0.113.50") -> None:
    """Append `count` login events of `user`, `step` apart from `start`, to its client's chain."""
    browser, os_name = browser_and_os(user_agent)
    ops = connection.ops
    with transaction.atomic():
        head = AuthEvent.objects.filter(client_id=user.client_id).order_by("-seq").values_list("seq", "hash").first()
        seq, prev_hash = head if head else (0, chain.GENESIS)
        rows = []
        for n, event_id in enumerate(AuthEvent.objects.allocate_ids(count)):
            seq += 1
            values = {
                "id": event_id, "chain_version": chain.CHAIN_VERSION,
                "agency_id": user.client.agency_id, "client_id": user.client_id, "user_id": user.pk,
                "email": user.email, "event_type": EventType.LOGIN, "occurred_at": start + n * step,
                "ip": ip, "user_agent": user_agent, "browser": browser, "os": os_name,
                "session_ref": f"{user.pk:08x}{seq:056x}", "reason": "", "seq": seq, "prev_hash": prev_hash,
            }
            values["hash"] = prev_hash = chain.event_hash(values)
            values["occurred_at"] = ops.adapt_datetimefield_value(values["occurred_at"])
            rows.append([values[c] for c in _COLUMNS])
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                with cursor.cursor.copy(f"COPY activitylog_authevent ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                cursor.executemany(
                    f"INSERT INTO activitylog_authevent ({', '.join(_COLUMNS)}) VALUES ({', '.join(['%s'] * len(_COLUMNS))})",
                    rows,
                )
