from django.conf import settings
from django.db import connections, models
from django.db.models import F, Func, Q, Value

from clients.clock import spell_utc


class AppendOnlyError(Exception):
    """Raised on any attempt to change or remove an activity log entry."""

    def __init__(self, action: str = "changed") -> None:
        super().__init__(f"Activity log entries are append-only and cannot be {action}.")


class EventType(models.TextChoices):
    LOGIN = "login", "Login"
    LOGOUT = "logout", "Logout"
    LOGIN_FAILED = "login_failed", "Failed login"
    SESSION_EXPIRED = "session_expired", "Session expired"


class FailureReason(models.TextChoices):
    BAD_PASSWORD = "bad_password", "Wrong password"
    ACCOUNT_INACTIVE = "account_inactive", "Portal account deactivated"
    CLIENT_ARCHIVED = "client_archived", "Client archived"
    CLIENT_INACTIVE = "client_inactive", "Client inactive"
    # Recorded once, after the failure that reached the limit (clients/throttle.py); the
    # attempts refused while it lasts are not recorded.
    LOCKED_OUT = "locked_out", "Locked out after too many failures"


class SessionEndReason(models.TextChoices):
    """Why a portal session ended without a logout (the `reason` of a session_expired event)."""

    IDLE_TIMEOUT = "idle_timeout", "Idle timeout"
    MAX_AGE = "max_age", "Maximum session length reached"
    PASSWORD_CHANGED = "password_changed", "Password changed"


def versionless(field: str | F) -> Func:
    """
    `browser` or `os` without its trailing version: "Chrome 131" -> "Chrome", "Mac OS X 10.15"
    -> "Mac OS X". A browser update is not a new device. RTRIM with a set of characters
    means the same on PostgreSQL and SQLite, and is immutable, so an index can hold it.
    """
    expression = F(field) if isinstance(field, str) else field
    return Func(expression, Value("0123456789. "), function="RTRIM", output_field=models.CharField())


REASONS_BY_EVENT_TYPE = {
    EventType.LOGIN_FAILED: FailureReason.values,
    EventType.SESSION_EXPIRED: SessionEndReason.values,
}


class AuthEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("updated")

    def delete(self):
        raise AppendOnlyError("deleted")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AppendOnlyError("updated")

    def bulk_create(self, *args, **kwargs):
        # Every entry goes through activitylog.services.auth_event_record, which
        # maintains the hash chain.
        raise AppendOnlyError("bulk-created outside the recording service")

    def allocate_ids(self, count: int = 1) -> list[int]:
        """
        Ids for `count` new events, in increasing order, taken before they are hashed: the
        chain covers each event's id. Call it inside the transaction that inserts them,
        under the client's lock, so that a client's ids grow along its chain.

        PostgreSQL takes them from the table's own sequence, which concurrent appends (of
        other clients) share safely. On SQLite the writer holds the database's write lock
        from BEGIN IMMEDIATE to commit, so the next ids stay free until it inserts them;
        like AUTOINCREMENT, an id is never reused, even one whose row is gone.
        """
        table = self.model._meta.db_table
        with connections[self.db].cursor() as cursor:
            if cursor.db.vendor == "postgresql":
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, count]
                )
                return sorted(row[0] for row in cursor.fetchall())
            cursor.execute(
                "SELECT max(last) FROM (SELECT seq AS last FROM sqlite_sequence WHERE name = %s"
                f" UNION ALL SELECT max(id) FROM {table})",
                [table],
            )
            last = cursor.fetchone()[0] or 0
        return list(range(last + 1, last + 1 + count))


class AuthEvent(models.Model):
    """
    One portal sign-in, sign-out, failed sign-in or session expiry of a client's user.

    Rows are written only by `activitylog.services.auth_event_record` and never change:
    the model, its queryset, the admin and database triggers all refuse updates and
    deletes. Each client's events form an HMAC-SHA-256 chain (`seq`, `prev_hash`,
    `hash`) that `manage.py verify_activity_log` recomputes.
    """

    id = models.BigAutoField(primary_key=True)
    # Denormalised from client so that per-agency reads (admin filter, exports) need no
    # join. Part of the hashed fields, so it cannot drift silently.
    # No single-column indexes on agency and client: the composite indexes below lead
    # with them and serve the same lookups.
    agency = models.ForeignKey("clients.Agency", on_delete=models.PROTECT, related_name="+", db_index=False)
    client = models.ForeignKey(
        "clients.Client", on_delete=models.PROTECT, related_name="auth_events", db_index=False
    )
    # Indexed by (user, event_type, occurred_at) below, which serves every lookup by user.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="auth_events", db_index=False
    )
    email = models.EmailField(help_text="The user's email at the time of the event.")
    event_type = models.CharField(max_length=20, choices=EventType.choices)
    occurred_at = models.DateTimeField()
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    browser = models.CharField(max_length=64, blank=True)
    os = models.CharField(max_length=64, blank=True)
    session_ref = models.CharField(
        max_length=64, blank=True,
        help_text="SHA-256 of the session key (never the key): pairs a logout with its login.",
    )
    reason = models.CharField(
        max_length=32, choices=FailureReason.choices + SessionEndReason.choices, blank=True,
        help_text="Why a login failed, or why a session ended without a logout.",
    )
    seq = models.PositiveBigIntegerField(help_text="Position in the client's chain, from 1.")
    # The form the hash was computed in (activitylog/chain.py). The recording service writes
    # the current one; the database default 1 is for the rows written before ids were
    # hashed, and for a process still running that older code during a deploy.
    chain_version = models.SmallIntegerField(db_default=1)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AuthEventQuerySet.as_manager()

    class Meta:
        verbose_name = "activity event"
        ordering = ["-occurred_at", "-id"]
        constraints = [
            # The chain cannot fork: two appends that read the same head collide here.
            models.UniqueConstraint(fields=["client", "seq"], name="authevent_client_seq_uniq"),
            # A session logs in, logs out and expires at most once: a retried or
            # concurrent write of the same event fails instead of doubling it.
            models.UniqueConstraint(
                fields=["session_ref", "event_type"],
                condition=~Q(session_ref="") & ~Q(event_type="login_failed"),
                name="authevent_session_event_uniq",
            ),
        ]
        indexes = [
            # Activity Log tab: a client's newest events, and "Load older" keyset pages
            # WHERE client_id = ? AND (occurred_at, id) < (?, ?) ORDER BY occurred_at DESC, id DESC.
            models.Index(fields=["client", "-occurred_at", "-id"], name="authevent_client_time"),
            # Tab filtered by type, the summary (logins in the last 7/30 days; failed
            # sign-ins and lockouts in the last 7, told apart by the included reason, so
            # that all of its counts are index-only) and the Clients page's last-login column.
            models.Index(
                fields=["client", "event_type", "-occurred_at"], include=["reason"], name="authevent_client_type_time_r",
            ),
            # Django admin's unfiltered changelist and time-ordered exports.
            models.Index(fields=["-occurred_at", "-id"], name="authevent_time"),
            # Admin's agency filter and per-agency exports.
            models.Index(fields=["agency", "-occurred_at"], name="authevent_agency_time"),
            # Security signals (activitylog/security.py), one index probe per row of a page:
            # "New IP": has this user an earlier login from this IP?
            models.Index(
                fields=["user", "ip", "occurred_at"], condition=Q(event_type="login"), name="authevent_user_ip_login",
            ),
            # "New device": has this user an earlier login from this browser and OS (versions aside)?
            models.Index(
                F("user"), versionless("browser"), versionless("os"), F("occurred_at"),
                condition=Q(event_type="login"), name="authevent_user_device_login",
            ),
            # An expanded row's other events from the same IP (this client only, nearest in
            # time), and the burst probe "5 failures from this IP within 10 minutes".
            models.Index(fields=["client", "ip", "-occurred_at"], name="authevent_client_ip_time"),
            # The Overview tab's portal users: each one's last login (one probe) and login
            # counts (index-only). It replaces the foreign key's own (user_id) index, whose
            # lookups it serves: admin's search by portal user, the PROTECT check on delete.
            # With client_id included, the tab's search by email (user and client) counts its
            # matches index-only (migration 0007 also gives PostgreSQL the user → client
            # dependency, so it estimates them).
            models.Index(
                fields=["user", "event_type", "-occurred_at"], include=["client"], name="authevent_user_type_time",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_event_type_display()} by {self.email} at {spell_utc(self.occurred_at)}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("updated")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("deleted")


class PortalSession(models.Model):
    """
    A portal session that has not ended, so that its end is logged even without a logout.

    Opened together with the login event, its expiry pushed forward by
    PortalSessionMiddleware while the client uses the portal (and mirrored into Django's
    own session expiry, so both end at the same moment), and removed when the session
    ends: by a logout, by `record_session_expiries`, or by a password change. Bookkeeping
    for the log, not part of it: rows change and go away.
    """

    session_ref = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the session key.")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    started_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    expiry_reason = models.CharField(max_length=32, choices=SessionEndReason.choices)
    # The session's own IP and user agent, carried to its session_expired event (an expiry
    # has no request of its own) so that staff can tell which device's session ended.
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)

    class Meta:
        indexes = [
            # record_session_expiries: WHERE expires_at <= now.
            models.Index(fields=["expires_at"], name="portalsession_expiry"),
        ]

    def __str__(self) -> str:
        return f"Portal session of user {self.user_id} until {self.expires_at:%Y-%m-%d %H:%M:%S}"
