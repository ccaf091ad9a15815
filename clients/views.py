from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRefresh

# The one edge from this app into the activity log: its pages show facts from the log.
from activitylog import selectors as activity_log
from clients.clock import ZONE_COOKIE, ZONE_COOKIE_MAX_AGE
from clients.forms import FIRST_CLICK, SORTS, ClientSearchForm, ZoneForm
from clients.models import Client
from clients.selectors import clients_for_agency, clients_ordered
from clients.staff import StaffHttpRequest, staff_required

CLIENTS_PER_PAGE = 50


@require_GET
def home(request):
    return redirect("clients:list")


@require_GET
@staff_required
def client_list(request: StaffHttpRequest):
    """
    The Clients page: search, status, premium and (for roles that read the log) Last seen
    filters, sortable by name, last login and logins in the last 30 days, 50 a page.
    """
    engagement = activity_log.may_see_login_facts(request.membership)
    form = ClientSearchForm(request.GET, engagement=engagement)
    context = {"form": form, "nav": "clients", "engagement": engagement}
    template = "clients/client_list.html" + _list_partial(request)
    if not form.is_valid():
        # Once each: an employee's Last seen and activity sort are refused for one reason.
        context["errors"] = list(dict.fromkeys(e for errors in form.errors.values() for e in errors))
        # 422: htmx swaps it (base.html), so the error shows where the results were.
        return render(request, template, context, status=422)
    paginator = Paginator(_listed_clients(form, agency=request.membership.agency), CLIENTS_PER_PAGE)
    number = form.cleaned_data["page"] or 1
    if number > paginator.num_pages:
        raise Http404("That page of clients does not exist.")
    context["page"] = paginator.page(number)
    query = request.GET.copy()
    query.pop("page", None)
    context["query"] = query.urlencode()
    context["sort_headers"] = _sort_headers(query, current=form.cleaned_data["sort"])
    context["narrowed_by"] = form.narrowed_by()
    return render(request, template, context)


def _list_partial(request: StaffHttpRequest) -> str:
    """The template partial an htmx request swaps: a sort header swaps the form with the results."""
    if not request.htmx:
        return ""
    return "#listing" if request.htmx.target == "client-listing" else "#results"


def _listed_clients(form: ClientSearchForm, *, agency) -> QuerySet[Client]:
    data = form.cleaned_data
    clients = clients_for_agency(agency=agency, q=data["q"].strip(), status=data["status"], premium=bool(data["premium"]))
    if form.engagement:
        # One `now` for the filter and the columns, so a client is not counted on both sides.
        now = timezone.now()
        if data["seen"]:
            clients = activity_log.clients_not_seen(clients, days=form.not_seen_days, now=now)
        clients = activity_log.clients_with_engagement(clients, now=now)
    sort = form.ordering
    return clients_ordered(clients, key=sort.key, descending=sort.descending)


def _sort_headers(query: QueryDict, *, current: str) -> dict[str, dict[str, str]]:
    """For each sortable column: the link that sorts by it (or reverses it), and its aria-sort."""
    headers = {}
    for column, first_click in FIRST_CLICK.items():
        active = SORTS[current].key == column
        if active:
            sort = current.removeprefix("-") if current.startswith("-") else "-" + current
        else:
            sort = first_click
        link = query.copy()
        link["sort"] = sort
        headers[column] = {
            "href": "?" + link.urlencode(),
            "aria_sort": ("descending" if SORTS[current].descending else "ascending") if active else "",
            "next": SORTS[sort].label,
        }
    return headers


@require_GET
@staff_required
def client_detail(request: StaffHttpRequest, client_id: int):
    """Client Details, Overview tab: the profile and the client's portal users, with their logins."""
    client = get_object_or_404(
        Client.objects.select_related("agency"), pk=client_id, agency=request.membership.agency
    )
    membership = request.membership
    context = {
        "client": client,
        "active_tab": "overview",
        "nav": "clients",
        "portal_users": activity_log.portal_users_for_staff(membership=membership, client=client, now=timezone.now()),
        "summary": activity_log.login_summary_for_staff(membership=membership, client=client),
        "login_count_cap": activity_log.LOGIN_COUNT_CAP,
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
