"""
Settings for the agency CRM.

Everything that differs between the embedded demo and a production deployment
comes from the environment. The defaults are safe for the demo only:

    DATABASE_URL     default: SQLite file var/db.sqlite3 (WAL mode)
    REDIS_URL        unset: in-memory channel layer (one process only)
    REDIS_PREFIX     prefix of the channel layer's channels in Redis (default "agencyhandy.db<n>", n from REDIS_URL)
    SECRET_KEY       required unless DEBUG=1
    DEBUG            "1"/"true" to enable; default off
    ALLOWED_HOSTS    comma-separated; default "localhost,127.0.0.1" with DEBUG, else empty
    STATIC_ROOT      where `collectstatic` writes and the server reads static files (default var/static)
    TRUSTED_PROXIES  comma-separated IPs or CIDR ranges whose X-Forwarded-For is believed
    LOGIN_FAILURE_LIMIT, LOGIN_COOLOFF_SECONDS  login throttling (README: "Login throttling")
    ACTIVITYLOG_CHAIN_KEY  HMAC key of the activity log hash chain (default: from SECRET_KEY)
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = _env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "django-insecure-demo-only-key-never-use-this-in-production-0123456789"

ALLOWED_HOSTS = _env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = _env_list("CSRF_TRUSTED_ORIGINS")

# Proxies whose X-Forwarded-For header we believe (see agencyhandy/lib/client_ip.py).
TRUSTED_PROXIES = _env_list("TRUSTED_PROXIES")

INSTALLED_APPS = [
    # ServeStatic's runserver wraps the next one down (daphne's) and turns off Django's own
    # static view, so the demo serves /static/ through the same middleware as production.
    "servestatic",
    # daphne next, so that runserver serves ASGI (HTTP and websockets) like production.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "csp",
    "channels",
    "clients",
    "activitylog",
    "demo",
    "axes",
]

MIDDLEWARE = [
    # A database that cannot be reached is a branded 503 with Retry-After, not a 500.
    "agencyhandy.unavailable.ServiceUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files, before anything that reads the session or the database: the
    # production command (`daphne agencyhandy.asgi:application`) serves them itself.
    # The middleware, not ServeStatic's ASGI wrapper: it configures itself from these
    # settings, reading the manifest in production and the finders with DEBUG on.
    "servestatic.middleware.ServeStaticMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "clients.middleware.PrivatePagesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "clients.middleware.AgencyTimezoneMiddleware",
    # After authentication; its response phase runs before the session is saved.
    "activitylog.sessions.PortalSessionMiddleware",
    # Turns a locked-out sign-in into the lockout page (clients/throttle.py).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "agencyhandy.urls"
ASGI_APPLICATION = "agencyhandy.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "clients.context_processors.staff",
                "activitylog.context_processors.activity_log",
            ],
        },
    },
]

# Databases ----------------------------------------------------------------------------

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"
    )
}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    Path(_db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    _db["OPTIONS"] = {
        # WAL lets the page read while a login is being written. IMMEDIATE takes the
        # write lock at BEGIN, so two writers queue instead of failing to upgrade a lock.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
elif _db["ENGINE"] == "django.db.backends.postgresql":
    # psycopg 3's pool. Under ASGI, sync views share one thread per process, so a few
    # connections a process are plenty; raise DB_POOL_MAX_SIZE for management commands
    # that use threads.
    #
    # Both waits are short on purpose. A request that cannot get a connection answers a
    # branded 503 with Retry-After (agencyhandy/unavailable.py) after DB_POOL_TIMEOUT
    # seconds, instead of holding the visitor (and a server thread) for long and then
    # failing anyway. connect_timeout bounds each attempt to open a connection: without
    # it, a database host that accepts TCP but never answers (a hung server, a dropped
    # route) holds the pool's connecting threads forever, and the pool cannot recover
    # when the database comes back. libpq treats anything under 2 s as 2 s.
    _db["CONN_MAX_AGE"] = 0
    _db["OPTIONS"] = {
        "connect_timeout": int(os.environ.get("DB_CONNECT_TIMEOUT", "2")),
        # Lets the recording service prepare its four statements (services._statements):
        # Django turns psycopg's prepared statements off by default, for transaction
        # poolers. Django's own cursors bind on the client and never prepare whatever
        # this says; only cursors that ask (prepare=True) are prepared at once.
        # Behind PgBouncer in transaction mode: 1.21 or later, with max_prepared_statements set.
        "prepare_threshold": 5,
        "pool": {
            "min_size": int(os.environ.get("DB_POOL_MIN_SIZE", "1")),
            "max_size": int(os.environ.get("DB_POOL_MAX_SIZE", "10")),
            "timeout": float(os.environ.get("DB_POOL_TIMEOUT", "2")),
        },
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Channels -------------------------------------------------------------------------------

REDIS_URL = os.environ.get("REDIS_URL", "")


def _redis_database(url: str) -> int:
    from redis.connection import parse_url

    return int(parse_url(url).get("db") or 0)


if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # Redis pub/sub: an event is one PUBLISH, and each server process hands it to
            # its own sockets of that group. The list-based RedisChannelLayer wrote one
            # Redis message per socket instead (0.9 s p99 at 1,000 sockets, docs/benchmarks.md).
            # Pub/sub keeps nothing: a message sent while a process's Redis connection is
            # down is lost to its sockets, as a message to a closed socket always was; tabs
            # fetch what they missed when they reconnect (the resync, consumers.py).
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        # A Redis that stops answering fails within 15 s (redis-py's
                        # default is to wait for ever).
                        "socket_timeout": 15,
                        "socket_connect_timeout": 5,
                        # Dead connections (a Redis restart, a dropped NAT entry) are found by TCP.
                        "socket_keepalive": True,
                    }
                ],
                # Pub/sub channels belong to the whole Redis server, not to its numbered
                # database: deployments (or test runs) that share a server keep apart by
                # prefix, and the default names the database, so REDIS_URLs that differ
                # only in it never hear each other's groups (`activity.client.1`, ...).
                "prefix": os.environ.get("REDIS_PREFIX") or f"agencyhandy.db{_redis_database(REDIS_URL)}",
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Auth -----------------------------------------------------------------------------------

AUTH_USER_MODEL = "clients.User"
AUTHENTICATION_BACKENDS = [
    # First: a locked-out account and IP is refused before any password is checked.
    "clients.throttle.LoginThrottleBackend",
    "clients.backends.EmailBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "clients:list"
LOGOUT_REDIRECT_URL = "login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Login throttling (django-axes; clients/throttle.py) ---------------------------------
#
# After LOGIN_FAILURE_LIMIT failed sign-ins for one account from one IP, each within
# LOGIN_COOLOFF_SECONDS of the one before, that account and IP are refused without their
# password being checked until LOGIN_COOLOFF_SECONDS after the last failure. Counting by
# account *and* IP means that someone guessing from elsewhere cannot lock a client out
# of their own portal. A successful sign-in resets the count.
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(seconds=int(os.environ.get("LOGIN_COOLOFF_SECONDS", str(15 * 60))))
if AXES_FAILURE_LIMIT < 1 or AXES_COOLOFF_TIME.total_seconds() < 1:
    raise ImproperlyConfigured("LOGIN_FAILURE_LIMIT and LOGIN_COOLOFF_SECONDS must be at least 1.")
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Refused attempts are not counted and do not restart the cool-off: the lockout ends at a
# known moment (the Retry-After we send), and a flood while locked out adds nothing.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# The account as the backend matches it (any case), and the IP the activity log records.
AXES_USERNAME_FORM_FIELD = "username"
AXES_USERNAME_CALLABLE = "clients.throttle.attempt_username"
AXES_CLIENT_IP_CALLABLE = "agencyhandy.lib.client_ip.request_client_ip"
AXES_LOCKOUT_CALLABLE = "clients.throttle.lockout_response"
# The client's activity log already records every portal sign-in; a second, unbounded
# table of successful logins would only duplicate it.
AXES_DISABLE_ACCESS_LOG = True

# Internationalisation -----------------------------------------------------------------

LANGUAGE_CODE = "en-us"
# Dates and times in Django's own displays (admin) spelled as every page spells them.
FORMAT_MODULE_PATH = ["agencyhandy.formats"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Static files ---------------------------------------------------------------------------

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = os.environ.get("STATIC_ROOT") or BASE_DIR / "var" / "static"
# `collectstatic` gives every file a content-hashed name and a gzipped copy, and
# ServeStatic serves the hashed names with a one-year, immutable Cache-Control (a new
# version is a new name) and other files for SERVESTATIC_MAX_AGE (60 s). With DEBUG on
# (the demo) it serves the source files instead, unhashed, and needs no collectstatic.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "servestatic.storage.CompressedManifestStaticFilesStorage"},
}

# Security -------------------------------------------------------------------------------

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = _env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_SSL_REDIRECT = _env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = _env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if TRUSTED_PROXIES:
    # The TLS-terminating proxy tells us the original scheme.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Content-Security-Policy: scripts and styles come only from our own static files, never
# inline (templates carry no <script> bodies, on* attributes or style attributes; htmx's
# indicator styles are off, see base.html), so an injected tag or attribute cannot run.
# 'self' covers the tab's websocket too: CSP matches ws:/wss: of the page's own host.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
SILENCED_SYSTEM_CHECKS = [
    # HSTS preload is a one-way door for the whole domain; opt in with SECURE_HSTS_PRELOAD.
    "security.W021",
]

# Activity log ---------------------------------------------------------------------------

# The hash chain is an HMAC, so someone with only database access cannot recompute it
# after an edit. Keep this key (or SECRET_KEY) stable and outside the database.
ACTIVITYLOG_CHAIN_KEY = os.environ.get("ACTIVITYLOG_CHAIN_KEY", "")
ACTIVITYLOG_PAGE_SIZE = 50
# An open Activity Log socket checks its session and access again this often, so access
# that ends by any path (even a raw SQL update) ends for open tabs within this time.
ACTIVITYLOG_SOCKET_RECHECK_SECONDS = float(os.environ.get("ACTIVITYLOG_SOCKET_RECHECK_SECONDS", "20"))

# A portal session ends after PORTAL_SESSION_IDLE_TIMEOUT seconds without a request, and
# PORTAL_SESSION_MAX_AGE seconds after sign-in at the latest. Django's own session expiry
# is kept at the same moment, and `record_session_expiries` (cron, every minute) logs the
# end as a session_expired event at that moment.
PORTAL_SESSION_IDLE_TIMEOUT = int(os.environ.get("PORTAL_SESSION_IDLE_TIMEOUT", str(60 * 60)))
PORTAL_SESSION_MAX_AGE = int(os.environ.get("PORTAL_SESSION_MAX_AGE", str(12 * 60 * 60)))
# The idle expiry moves forward at most this often (one session write a minute, not one a request).
PORTAL_SESSION_REFRESH_INTERVAL = 60

# Logging --------------------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        "django": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        # axes logs every attempt at INFO (and its version at every start, commands too).
        "axes": {"level": "WARNING"},
    },
}
