from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRefresh

# The one edge from this app into the activity log: its pages show facts from the log.
from activitylog import selectors as activity_log
from clients.clock import ZONE_COOKIE, ZONE_COOKIE_MAX_AGE
from clients.forms import ClientSearchForm, ZoneForm
from clients.models import Client
from clients.selectors import clients_for_agency
from clients.staff import StaffHttpRequest, staff_required

CLIENTS_PER_PAGE = 50


@require_GET
def home(request):
    return redirect("clients:list")


@require_GET
@staff_required
def client_list(request: StaffHttpRequest):
    form = ClientSearchForm(request.GET)
    context = {"form": form, "nav": "clients"}
    template = "clients/client_list.html" + ("#results" if request.htmx else "")
    if not form.is_valid():
        context["errors"] = [e for errors in form.errors.values() for e in errors]
        # 422: htmx swaps it (base.html), so the error shows where the results were.
        return render(request, template, context, status=422)
    clients = activity_log.clients_with_last_login(
        clients_for_agency(
            agency=request.membership.agency,
            q=form.cleaned_data["q"].strip(),
            status=form.cleaned_data["status"],
        )
    )
    paginator = Paginator(clients, CLIENTS_PER_PAGE)
    number = form.cleaned_data["page"] or 1
    if number > paginator.num_pages:
        raise Http404("That page of clients does not exist.")
    context["page"] = paginator.page(number)
    query = request.GET.copy()
    query.pop("page", None)
    context["query"] = query.urlencode()
    return render(request, template, context)


@require_GET
@staff_required
def client_detail(request: StaffHttpRequest, client_id: int):
    """Client Details, Overview tab: the profile and the client's portal users."""
    client = get_object_or_404(
        Client.objects.select_related("agency"), pk=client_id, agency=request.membership.agency
    )
    context = {
        "client": client,
        "active_tab": "overview",
        "nav": "clients",
        "portal_users": client.portal_users.order_by("email"),
        "summary": activity_log.login_summary_for_staff(membership=request.membership, client=client),
    }
    template = "clients/client_overview.html" + ("#tab" if request.htmx else "")
    return render(request, template, context)


@require_POST
@staff_required
def zone_set(request: StaffHttpRequest) -> HttpResponse:
    """Keep the viewer's choice of zone (agency, browser or UTC) in a cookie, and go back."""
    form = ZoneForm(request.POST)
    if not form.is_valid():
        return HttpResponse(" ".join(e for errors in form.errors.values() for e in errors), status=400,
                            content_type="text/plain; charset=utf-8")
    choice = form.choice(agency_zone=request.membership.agency.time_zone)
    back = form.cleaned_data["next"]
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        back = "/clients/"
    response = HttpResponseClientRefresh() if request.htmx else redirect(back)
    response.set_cookie(ZONE_COOKIE, choice.cookie_value(), max_age=ZONE_COOKIE_MAX_AGE,
                        samesite="Lax", secure=request.is_secure(), httponly=True)
    return response
