"""
When the database, or the activity log in it, cannot be reached: a branded 503 with
Retry-After, quickly, on every page, never a 500.

"Unavailable" means a connection that could not be had or was lost (OperationalError,
InterfaceError: the pool's timeout, a refused or hung connection) or a ServiceUnavailable
raised by the apps, such as an event that could not be recorded (the activity log's
ActivityLogUnavailable: a sign-in must not happen unrecorded). Other database errors are
bugs and stay 500s.

Django turns an exception into a response in the layer that raised it, so two hooks:
- `ServiceUnavailableMiddleware` catches them in views: the sign-in and sign-out views,
  the auth backends and axes' counting, the log's signal receivers;
- `server_error` (the project's handler500) catches them in other middleware: a
  middleware that reads the session or the user before the view, or the session saved
  after it. Like any handler500 it runs only with DEBUG off.

The page is rendered without the request: its context processors read the session and
the user, which is the database that just failed.
"""

import logging
import sys
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections, transaction
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.urls import Resolver404, resolve
from django.utils.deprecation import MiddlewareMixin
from django.views.defaults import server_error as django_server_error

logger = logging.getLogger("activitylog")

TEMPLATE = "unavailable.html"
# Matches the page's "try again in a minute".
RETRY_AFTER_SECONDS = 60

_ACTIONS = {"login": "sign you in", "logout": "sign you out"}


class ServiceUnavailable(Exception):
    """Something the request needs cannot be done right now; the user gets the 503, not a 500."""


@contextmanager
def fail_closed_transaction():
    """
    `transaction.atomic()` for an action that must not happen if what it needs is
    unavailable (a sign-in that the activity log cannot record): ServiceUnavailable
    leaves the block, and all of it rolls back. So the writes directly in it need no
    savepoint of their own to fall back to (`directly_in_fail_closed_transaction`).

    What it buys: a portal login's event no longer waits for a SAVEPOINT and its RELEASE,
    two of the four round trips of its recording (docs/benchmarks.md #5). Work inside
    a nested atomic block keeps its savepoint, for code that carries on after an error.
    """
    with transaction.atomic():
        db = connections[DEFAULT_DB_ALIAS]
        outer = getattr(db, _FAIL_CLOSED, None)
        setattr(db, _FAIL_CLOSED, len(db.savepoint_ids))  # this block's depth
        try:
            yield
        finally:
            setattr(db, _FAIL_CLOSED, outer)


def directly_in_fail_closed_transaction(db) -> bool:
    """Whether `db` (a connection) is in a `fail_closed_transaction`, and in no atomic block nested in it."""
    return db.in_atomic_block and getattr(db, _FAIL_CLOSED, None) == len(db.savepoint_ids)


_FAIL_CLOSED = "agencyhandy_fail_closed"


def is_unavailable(exc: BaseException | None) -> bool:
    return isinstance(exc, (OperationalError, InterfaceError, ServiceUnavailable))


def _url_name(request) -> str | None:
    match = request.resolver_match
    if match is None:  # raised before URL resolution, in a middleware
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return None
    return match.url_name


def unavailable_response(request, action: str | None = None) -> HttpResponse:
    """The branded 503 with Retry-After; `action` defaults to what the URL was for."""
    url_name = _url_name(request)
    context = {
        "action": action or _ACTIONS.get(url_name, "load this page"),
        "sign_in_page": request.path if url_name == "login" else "",
    }
    response = HttpResponse(render_to_string(TEMPLATE, context), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class ServiceUnavailableMiddleware(MiddlewareMixin):
    """A view that could not reach the database (or the log) answers the branded 503."""

    def process_exception(self, request, exception):
        if not is_unavailable(exception):
            return None
        logger.error("%s %s: service unavailable: %s", request.method, request.path, exception,
                     exc_info=exception)
        return unavailable_response(request)


def server_error(request) -> HttpResponse:
    """handler500: the branded 503 when the cause was unavailability, else Django's 500 page."""
    if is_unavailable(sys.exc_info()[1]):
        return unavailable_response(request)
    return django_server_error(request)
