"""Log the end of every portal session that expired without a logout."""

from django.core.management.base import CommandError

from activitylog.services import ActivityLogUnavailable
from activitylog.sessions import portal_sessions_expire_due
from agencyhandy.commands import Command as BaseCommand


class Command(BaseCommand):
    help = (
        "Record a session_expired event, at the moment of expiry, for every portal session "
        "that reached its idle timeout or maximum age without a logout. Idempotent; run it "
        "from cron every minute. Several copies at once never record an expiry twice."
    )

    def handle(self, *args, **options) -> None:
        try:
            recorded = portal_sessions_expire_due()
        except ActivityLogUnavailable as exc:
            raise CommandError(f"The activity log is unavailable; nothing more was recorded: {exc}") from None
        if recorded or options["verbosity"] > 1:
            self.stdout.write(f"Recorded {recorded} session expiries.")
