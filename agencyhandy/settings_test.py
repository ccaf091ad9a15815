"""Settings for the test suite: production settings, plus what tests need over plain HTTP."""

import os
import uuid

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-that-is-long-enough-for-django-checks-0123")
# Test runs on one machine may share a Redis database: each keeps to its own keys.
os.environ.setdefault("REDIS_PREFIX", f"agencyhandy-test-{uuid.uuid4().hex[:12]}")

from agencyhandy.settings import *  # noqa: E402,F403

# The test client and the browser tests talk plain HTTP to 127.0.0.1.
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]

# In-process tests (the Django test client) render templates but never fetch static
# files, so `{% static %}` uses the plain storage and needs no collectstatic first, and
# ServeStatic's middleware stays out: it is async-only, so under the sync test client
# it would run every request through an event loop of its own, which production (an
# async chain under daphne) never does. The server processes the browser tests start
# use the production storage and middleware, on files collected once per test session
# (tests/servers.py): they serve what production serves.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
MIDDLEWARE = [m for m in MIDDLEWARE if m != "servestatic.middleware.ServeStaticMiddleware"]  # noqa: F405

# Hashing passwords at full strength would dominate the suite's run time, so users made
# in-process get MD5. The server processes run the production settings, which check
# PBKDF2 only (MD5 is no hash for real passwords), so tests that sign in through them
# store a PBKDF2 hash (the `server_passwords` fixture), which this list can check too.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", "django.contrib.auth.hashers.PBKDF2PasswordHasher"]

# The browser tests start real server processes that must share the test database, so
# the SQLite test database is a file rather than in memory.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / "test.sqlite3")}  # noqa: F405
