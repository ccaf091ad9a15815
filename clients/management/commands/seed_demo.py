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
from clients.models import Agency, Client, ClientStatus, Role, StaffMembership, User

DEFAULT_PASSWORD = "demo-password"
HISTORY_DAYS = 120

AGENCIES = [
    ("acme", "Acme", "America/New_York"),
    ("globex", "Globex", "Europe/Berlin"),
]
STAFF = [
    ("superadmin@acme.test", "Sam Super", "acme", Role.SUPER_ADMIN),
    ("admin@acme.test", "Ada Admin", "acme", Role.ADMIN),
    ("manager@acme.test", "Max Manager", "acme", Role.MANAGER),
    ("employee@acme.test", "Emma Employee", "acme", Role.EMPLOYEE),
    ("manager@globex.test", "Greta Manager", "globex", Role.MANAGER),
]
# (agency, name, company, email, status, archived, premium, portal users, sessions a week)
CLIENTS = [
    ("acme", "Northwind Traders", "Northwind Traders LLC", "hello@northwind.test", ClientStatus.ACTIVE, False, True,
     ["client@acme.test", "buyer@northwind.test", "finance@northwind.test"], 5),
    ("acme", "Blue Harbor Dental", "Blue Harbor Dental PC", "office@blueharbor.test", ClientStatus.ACTIVE, False, True,
     ["office@blueharbor.test", "dr.lee@blueharbor.test"], 3),
    ("acme", "Pixel & Pine Studio", "Pixel and Pine Ltd", "studio@pixelpine.test", ClientStatus.ACTIVE, False, False,
     ["studio@pixelpine.test"], 1.5),
    ("acme", "Summit Legal", "Summit Legal Partners", "admin@summitlegal.test", ClientStatus.ACTIVE, False, False,
     ["admin@summitlegal.test", "paralegal@summitlegal.test"], 0.5),
    ("acme", "Greenleaf Organics", "Greenleaf Organics Co", "team@greenleaf.test", ClientStatus.INACTIVE, False, False,
     ["team@greenleaf.test"], 1),
    ("acme", "Old Mill Bakery", "Old Mill Bakery", "orders@oldmill.test", ClientStatus.ACTIVE, True, False,
     ["orders@oldmill.test"], 1),
    ("acme", "Brightside Realty", "Brightside Realty Group", "info@brightside.test", ClientStatus.INVITED, False, False,
     ["info@brightside.test"], 0),
    ("globex", "Initech", "Initech Inc", "it@initech.test", ClientStatus.ACTIVE, False, True,
     ["client@globex.test", "peter@initech.test"], 3),
]
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
]


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
