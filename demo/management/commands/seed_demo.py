"""Create the demo agencies, staff, clients, portal users and months of portal history."""

import random
from datetime import timedelta

from django.conf import settings
from django.core.management.base import CommandError
from django.db import transaction
from django.utils import timezone

from activitylog.models import AuthEvent, EventType, FailureReason, SessionEndReason
from activitylog.services import auth_event_record
from agencyhandy.commands import Command as BaseCommand
from clients.models import Agency, Client, StaffMembership, User
from demo.data import AGENCIES, CLIENTS, DEFAULT_PASSWORD, HISTORY_DAYS, STAFF, USER_AGENTS


class Command(BaseCommand):
    help = (
        "Create (or refresh) the demo: agencies Acme and Globex, one staff user of each role, "
        "a platform superuser, clients with portal users, and months of portal history "
        "recorded through the activity log service. Safe to run again."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--password", default=DEFAULT_PASSWORD,
                            help=f"Password for every demo account (default: {DEFAULT_PASSWORD}).")

    def handle(self, *args, password: str, **options) -> None:
        if len(password) < 8:
            raise CommandError("--password must be at least 8 characters.", returncode=2)
        with transaction.atomic():
            agencies = {
                slug: Agency.objects.update_or_create(slug=slug, defaults={"name": name, "time_zone": tz})[0]
                for slug, name, tz in AGENCIES
            }
            accounts = [("root@demo.test", "platform superuser (Django admin)")]
            self._user("root@demo.test", "Root Operator", password, is_staff=True, is_superuser=True)
            for email, full_name, slug, role in STAFF:
                user = self._user(email, full_name, password)
                StaffMembership.objects.update_or_create(user=user, defaults={"agency": agencies[slug], "role": role})
                accounts.append((email, f"{role.label}, {agencies[slug].name}"))
            new_history = 0
            for slug, name, company, email, status, archived, premium, users, weekly in CLIENTS:
                client, _ = Client.objects.update_or_create(
                    agency=agencies[slug], name=name,
                    defaults={"company_name": company, "email": email, "status": status,
                              "is_archived": archived, "is_premium": premium},
                )
                portal_users = [
                    self._user(u, u.split("@")[0].replace(".", " ").title(), password, client=client)
                    for u in users
                ]
                accounts.append((users[0], f"portal user of {name} ({agencies[slug].name})"))
                if weekly and not AuthEvent.objects.filter(client=client).exists():
                    new_history += self._history(client, portal_users, weekly)

        self.stdout.write(self.style.SUCCESS("Demo data is ready."))
        self.stdout.write(f"Recorded {new_history} new history events." if new_history else
                          "History was already there; nothing new recorded.")
        self.stdout.write(f"\nEvery account's password: {password}\n")
        for email, what in accounts:
            self.stdout.write(f"  {email:<28} {what}")

    def _user(self, email: str, full_name: str, password: str, **fields) -> User:
        user, created = User.objects.get_or_create(email=email, defaults={"full_name": full_name, **fields})
        if created or not user.check_password(password):
            user.set_password(password)
            user.save(update_fields=["password"])
        return user

    def _history(self, client: Client, users: list[User], weekly: float) -> int:
        """Realistic sessions over the last HISTORY_DAYS days, oldest first, via the service."""
        rng = random.Random(client.name)
        now = timezone.now()
        moment = now - timedelta(days=HISTORY_DAYS)
        count = 0
        ips = [f"203.0.113.{rng.randint(2, 250)}", f"198.51.100.{rng.randint(2, 250)}",
               f"2001:db8::{rng.randint(1, 0xffff):x}"]
        while True:
            moment += timedelta(hours=rng.expovariate(weekly / (7 * 24)))
            if moment > now - timedelta(hours=1):
                return count
            user = rng.choice(users)
            ua, ip = rng.choice(USER_AGENTS), rng.choice(ips)
            if rng.random() < 0.12:
                auth_event_record(user=user, event_type=EventType.LOGIN_FAILED, ip=ip, user_agent=ua,
                                  reason=FailureReason.BAD_PASSWORD, occurred_at=moment)
                moment += timedelta(seconds=rng.randint(10, 90))
                count += 1
            session = f"{rng.getrandbits(256):064x}"
            auth_event_record(user=user, event_type=EventType.LOGIN, ip=ip, user_agent=ua,
                              session_ref=session, occurred_at=moment)
            count += 1
            if rng.random() < 0.8:
                moment += timedelta(minutes=rng.randint(2, 90), seconds=rng.randint(0, 59))
                auth_event_record(user=user, event_type=EventType.LOGOUT, ip=ip, user_agent=ua,
                                  session_ref=session, occurred_at=moment)
            else:  # closed the browser: the session ran out after the idle timeout
                auth_event_record(user=user, event_type=EventType.SESSION_EXPIRED, ip=ip, user_agent=ua,
                                  session_ref=session, reason=SessionEndReason.IDLE_TIMEOUT,
                                  occurred_at=moment + timedelta(seconds=settings.PORTAL_SESSION_IDLE_TIMEOUT))
            count += 1
