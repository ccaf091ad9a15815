"""
Start real server processes the way a deployment runs them, against the test database:
`daphne agencyhandy.asgi:application` with the production settings (DEBUG off), static
files collected by `collectstatic` and served by the app itself, and Redis between
processes whenever Redis is reachable. Only what plain HTTP on 127.0.0.1 needs differs
from production, through the environment variables settings.py already reads.

Passwords: the production settings hash with PBKDF2 and cannot check the MD5 hashes the
test settings use for speed, so tests that sign in through these servers use the
`server_passwords` fixture (tests/conftest.py).

The soak (soak/) and the benchmark's #6 (bench/delivery.py) start their servers here
too, against the database their own process uses. Product code never imports this.
"""

import atexit
import http.client
import http.cookiejar
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from django.conf import settings

from tests.subprocesses import app_database_url

ROOT = Path(__file__).resolve().parent.parent
DAPHNE = Path(sys.executable).parent / "daphne"
# The Redis the servers share when this process itself runs without one.
LOCAL_REDIS_URL = "redis://127.0.0.1:6379/15"
START_TIMEOUT = 60
_CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_redis() -> tuple[str, str]:
    """
    The Redis URL and key prefix the servers share: this process's own when it runs on
    Redis, so that what it publishes reaches their sockets; else the local Redis, under a
    prefix of this run's own (other runs on this machine may share that database, and
    their group names, `activity.client.1`, ..., would be ours too).
    """
    if settings.REDIS_URL:
        return settings.REDIS_URL, settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
    return LOCAL_REDIS_URL, _run_prefix()


@cache
def _run_prefix() -> str:
    return f"agencyhandy-test-{uuid.uuid4().hex[:12]}"


def redis_available() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(server_redis()[0], socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def production_env(**extra: str) -> dict[str, str]:
    """The environment of a production process on plain HTTP at 127.0.0.1."""
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    env.update(
        DJANGO_SETTINGS_MODULE="agencyhandy.settings",
        DEBUG="0",
        # The same key as this process: the chain key derives from it.
        SECRET_KEY=settings.SECRET_KEY,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        # Plain HTTP: no HTTPS redirect, cookies sent without TLS. Nothing else changes.
        SECURE_SSL_REDIRECT="0", SESSION_COOKIE_SECURE="0", CSRF_COOKIE_SECURE="0",
        # As the app's own role, when the suite has one (DATABASE_APP_ROLE; .ci/run).
        DATABASE_URL=app_database_url(),
        STATIC_ROOT=str(collected_static()),
    )
    if settings.ACTIVITYLOG_CHAIN_KEY:
        env["ACTIVITYLOG_CHAIN_KEY"] = settings.ACTIVITYLOG_CHAIN_KEY
    env.update(extra)
    return env


@cache
def collected_static() -> Path:
    """`manage.py collectstatic` with the production settings, once per test session."""
    root = Path(tempfile.mkdtemp(prefix="agencyhandy-static-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if k != "DEBUG"}
    env.update(DJANGO_SETTINGS_MODULE="agencyhandy.settings", SECRET_KEY=settings.SECRET_KEY, STATIC_ROOT=str(root))
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT, env=env, check=True, timeout=120,
    )
    return root


@contextmanager
def asgi_server(*, redis: bool = True, log_path: Path | None = None, port: int | None = None, env: dict | None = None):
    """
    Yield the base URL of a fresh `daphne` process; stop it afterwards.

    With `redis` (the default) the server uses Redis if it is reachable, as production
    with more than one process must; pass `redis=False` for the in-memory layer.
    """
    port = port or free_port()
    server_env = production_env(**(env or {}))
    if redis and redis_available():
        server_env["REDIS_URL"], server_env["REDIS_PREFIX"] = server_redis()
    log = open(log_path or os.devnull, "a")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [str(DAPHNE), "-b", "127.0.0.1", "-p", str(port), "agencyhandy.asgi:application"],
        cwd=ROOT, env=server_env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        _wait_until_ready(process, port, log_path)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_until_ready(process: subprocess.Popen, port: int, log_path: Path | None) -> None:
    """Poll until the server answers a page (Django loaded, database reachable)."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"The server exited with {process.returncode}; see {log_path or 'its log'}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/login/")
            status = conn.getresponse().status
            conn.close()
            if status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"The server did not answer within {START_TIMEOUT} s; see {log_path or 'its log'}")
        time.sleep(0.1)


class HttpBrowser:
    """
    A cookie-keeping HTTP client for the servers above: it opens a form's page and posts
    the form with its CSRF token, as a person in a browser would.
    """

    def __init__(self, base_url: str, user_agent: str = "Mozilla/5.0 (X11; Linux x86_64) HttpBrowser") -> None:
        self.base_url = base_url
        self.user_agent = user_agent
        self.jar = http.cookiejar.CookieJar()
        # No proxies from the environment: the servers are on this machine.
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(self.jar)
        )

    def request(self, path: str, data: dict | None = None, headers: dict | None = None) -> tuple[int, str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(
            self.base_url + path, data=body, headers={"User-Agent": self.user_agent, **(headers or {})}
        )
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace")

    def submit(self, page_path: str, action_path: str, fields: dict) -> tuple[int, str]:
        status, page = self.request(page_path)
        token = _CSRF_FIELD.search(page)
        if status != 200 or token is None:
            raise AssertionError(f"{page_path} answered {status} without a form")
        return self.request(action_path, {"csrfmiddlewaretoken": token.group(1), **fields})

    def sign_in(self, email: str, password: str, *, login_path: str = "/login/") -> str:
        """Sign in through the login page; return the page it lands on."""
        status, page = self.submit(login_path, login_path, {"username": email, "password": password})
        if status != 200 or "Sign out" not in page:
            raise AssertionError(f"Signing in as {email} at {login_path} failed (HTTP {status})")
        return page

    def portal_sign_out(self) -> None:
        status, page = self.submit("/portal/", "/portal/logout/", {})
        if status != 200 or "Sign in to your portal" not in page:
            raise AssertionError(f"Signing out of the portal failed (HTTP {status})")

    def cookie(self, name: str) -> str:
        return next(c.value for c in self.jar if c.name == name)

    @property
    def websocket_base(self) -> str:
        return self.base_url.replace("http://", "ws://", 1)
