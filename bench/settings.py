"""
Settings for `python -m bench` (`make bench`), which always runs with these: production
settings against the benchmark's own PostgreSQL database and Redis, with what an
in-process HTTP client needs over plain HTTP.

    BENCH_DATABASE_URL  default postgres://postgres@127.0.0.1:5432/agencyhandy_bench
    BENCH_REDIS_URL     default redis://127.0.0.1:6379/13
"""

import os

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/agencyhandy_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"

os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL
os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL") or DEFAULT_REDIS_URL
# A fixed key, so that a dataset built by one run still verifies in the next: the chain
# key derives from it. Never a production key.
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-never-use-in-production-8c1f0e2a9b7d6c5e4f3a")

from agencyhandy.settings import *  # noqa: E402,F403

DEBUG = False
# The in-process test client and the websocket client talk plain HTTP to 127.0.0.1.
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
# Measurement #5 compares a login with and without recording; a slow hasher would hide
# the difference under its own cost, so both sides use the same fast one.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The in-process client never fetches static files, and ServeStatic's middleware is
# async-only: under that sync client it would run every request through an event loop
# of its own, which production (an async chain under daphne) never does. The server
# processes of measurement #6 run the production settings, middleware included.
MIDDLEWARE = [m for m in MIDDLEWARE if m != "servestatic.middleware.ServeStaticMiddleware"]  # noqa: F405
# For the same reason `{% static %}` uses the plain storage: the manifest storage needs a
# `collectstatic` first, and a fresh checkout (CI's) has none.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
