"""Sign demo portal users in and out of a running server, to watch the Activity Log fill up."""

import http.client
import http.cookiejar
import random
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from django.core.management.base import CommandError

from agencyhandy.commands import Command as BaseCommand
from clients.models import Agency, ClientStatus, User
from demo.data import DEFAULT_PASSWORD, USER_AGENTS

_CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def server_url_is_valid(server: str) -> bool:
    """An http(s) URL of a host and an optional port, nothing more: what --server takes."""
    server = server.rstrip("/")
    if not (server.isascii() and re.match(r"^https?://[^/\s?#]+$", server)):
        return False
    try:
        parts = urllib.parse.urlsplit(server)
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError:  # such as http://[::1 or http://host:99999
        return False
    return bool(parts.hostname)


@dataclass
class _Browser:
    """One simulated browser: its own cookies, user agent and signed-in state."""

    email: str
    user_agent: str
    jar: http.cookiejar.CookieJar = field(default_factory=http.cookiejar.CookieJar)
    signed_in: bool = False
    failed_last: bool = False

    def __post_init__(self) -> None:
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def request(self, url: str, data: dict | None = None) -> tuple[int, str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(url, data=body, headers={"User-Agent": self.user_agent})
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace")

    def submit(self, page_url: str, action_url: str, fields: dict) -> tuple[int, str]:
        """Open the page with the form, as a person would, then post it with its CSRF token."""
        status, page = self.request(page_url)
        token = _CSRF_FIELD.search(page)
        if status != 200 or token is None:
            raise CommandError(f"Unexpected answer from {page_url} (HTTP {status}); is it this project's server?")
        return self.request(action_url, {"csrfmiddlewaretoken": token.group(1), **fields})


class Command(BaseCommand):
    help = (
        "Simulate portal users of an agency signing in and out of a running server, through "
        "the real login pages (never raw inserts), so the Activity Log tab fills up live. "
        "Run it beside `make run`."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--agency", default="acme", help="Agency slug (default: acme).")
        parser.add_argument("--rate", type=float, default=2.0, help="Sign-ins and sign-outs a second (default: 2).")
        parser.add_argument("--duration", type=float, default=60.0, help="Seconds to run (default: 60).")
        parser.add_argument("--server", default="http://127.0.0.1:8000", help="Base URL of the running server.")
        parser.add_argument("--password", default=DEFAULT_PASSWORD, help="The portal users' password (the demo's).")
        parser.add_argument("--seed", type=int, default=None, help="Random seed, for a repeatable run.")

    def handle(self, *args, agency: str, rate: float, duration: float, server: str, password: str,
               seed: int | None, **options) -> None:
        if not 0 < rate <= 50:
            raise CommandError("--rate must be above 0 and at most 50 a second.", returncode=2)
        if not 0 < duration <= 86_400:
            raise CommandError("--duration must be above 0 and at most 86400 seconds.", returncode=2)
        if not server_url_is_valid(server):
            raise CommandError("--server must look like http://127.0.0.1:8000", returncode=2)
        found = Agency.objects.filter(slug=agency).first()
        if found is None:
            raise CommandError(f"No agency with slug {agency!r}.", returncode=2)
        emails = list(
            User.objects.filter(client__agency=found, is_active=True, client__is_archived=False)
            .exclude(client__status=ClientStatus.INACTIVE)
            .values_list("email", flat=True)
        )
        if not emails:
            raise CommandError(f"Agency {found.name} has no portal users who can sign in.", returncode=2)

        rng = random.Random(seed)
        browsers = [_Browser(email, rng.choice(USER_AGENTS)) for email in emails]
        base = server.rstrip("/")
        counts = {"login": 0, "logout": 0, "failed": 0}
        self.stdout.write(f"Simulating {len(browsers)} portal users of {found.name} against {base} "
                          f"for {duration:g} s at {rate:g} a second. Ctrl-C stops.")
        deadline = time.monotonic() + duration
        try:
            while time.monotonic() < deadline:
                started = time.monotonic()
                self._step(rng.choice(browsers), base, password, rng, counts)
                time.sleep(max(0.0, rng.expovariate(rate) - (time.monotonic() - started)))
        except (OSError, http.client.HTTPException) as exc:  # URLError, a timeout, a dropped connection
            reason = getattr(exc, "reason", None) or exc
            raise CommandError(f"Could not reach {base}: {reason}. Is the server running (make run)?") from None
        except KeyboardInterrupt:
            self.stdout.write("Stopped.")
        self.stdout.write(self.style.SUCCESS(
            f"Done: {counts['login']} logins, {counts['logout']} logouts, {counts['failed']} failed sign-ins."
        ))

    def _step(self, browser: _Browser, base: str, password: str, rng: random.Random, counts: dict) -> None:
        if browser.signed_in:
            browser.submit(f"{base}/portal/", f"{base}/portal/logout/", {})
            browser.signed_in = False
            outcome = "logout"
        else:
            # Never two wrong passwords in a row: the next sign-in succeeds and resets the
            # count, so the simulation never trips the login throttle.
            wrong = not browser.failed_last and rng.random() < 0.1
            _, page = browser.submit(
                f"{base}/portal/login/", f"{base}/portal/login/",
                {"username": browser.email, "password": "not-it" if wrong else password},
            )
            browser.signed_in = "Sign out" in page
            browser.failed_last = not browser.signed_in
            outcome = "login" if browser.signed_in else "failed"
        counts[outcome] += 1
        self.stdout.write(f"  {outcome:<7} {browser.email}")
