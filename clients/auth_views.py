"""Sign-in and sign-out for staff (/login/) and for client portal users (/portal/...)."""

import logging

from django import forms
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.views import LoginView
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_GET, require_POST

from agencyhandy.unavailable import ServiceUnavailable, fail_closed_transaction, unavailable_response

logger = logging.getLogger("activitylog")


class StaffAuthenticationForm(AuthenticationForm):
    def confirm_login_allowed(self, user) -> None:
        super().confirm_login_allowed(user)
        if user.client_id is not None:
            raise forms.ValidationError(
                "This is a client portal account. Please sign in at the client portal.",
                code="portal_account",
            )


class PortalAuthenticationForm(AuthenticationForm):
    def confirm_login_allowed(self, user) -> None:
        super().confirm_login_allowed(user)
        if user.client_id is None:
            raise forms.ValidationError(
                "This is an agency staff account. Please sign in on the staff login page.",
                code="staff_account",
            )


class _RecordedLoginView(LoginView):
    """
    Django's login view, failing closed when the login cannot be recorded: the activity
    log's receiver (activitylog/receivers.py) raises ServiceUnavailable from login().
    """

    redirect_authenticated_user = True

    def form_valid(self, form):
        try:
            # One commit for what login() writes: the new session row, last_login, and the
            # activity log's event with its PortalSession. Each was a commit of its own,
            # and each commit waits for PostgreSQL's WAL flush (about 2 ms on the
            # benchmark's disk, docs/benchmarks.md #5). It also means a login that cannot
            # be recorded leaves nothing behind: its rows roll back with the event, which
            # therefore takes no savepoint of its own in it.
            with fail_closed_transaction():
                return super().form_valid(form)
        except ServiceUnavailable:
            logger.exception("Login refused: the activity log could not record it")
            # login() stopped before the session was saved; make sure nothing of it stays.
            self.request.session.flush()
            self.request.user = AnonymousUser()
            return unavailable_response(self.request, "sign you in")


class StaffLoginView(_RecordedLoginView):
    template_name = "registration/login.html"
    form_class = StaffAuthenticationForm
    next_page = reverse_lazy("clients:list")

    def get_default_redirect_url(self):
        if self.request.user.client_id is not None:
            return reverse_lazy("portal:home")
        return super().get_default_redirect_url()


class PortalLoginView(_RecordedLoginView):
    template_name = "portal/login.html"
    form_class = PortalAuthenticationForm
    next_page = reverse_lazy("portal:home")

    def get_default_redirect_url(self):
        if self.request.user.is_authenticated and self.request.user.client_id is None:
            return reverse_lazy("clients:list")
        return super().get_default_redirect_url()


def _logout(request, then: str):
    try:
        auth_logout(request)
    except ServiceUnavailable:
        logger.exception("Logout refused: the activity log could not record it")
        return unavailable_response(request, "sign you out")
    return redirect(then)


@require_POST
def staff_logout(request):
    return _logout(request, "login")


@require_POST
def portal_logout(request):
    return _logout(request, "portal:login")


@require_GET
@login_required(login_url="portal:login")
def portal_home(request):
    if request.user.client_id is None:
        return redirect("clients:list")
    return render(request, "portal/home.html", {"client": request.user.client})
