"""
Measurements #1-#3: pages staff open, timed in-process through Django's full request
path (middleware, view, queries, template) with a signed-in user.
"""

from datetime import UTC

from django.conf import settings
from django.test import Client as HttpClient

from activitylog.models import AuthEvent
from activitylog.selectors import EventFilters, Keyset, auth_events_page
from bench.dataset import ROOT_EMAIL, Dataset, manager_email
from bench.scale import Scale
from bench.stats import Samples, time_alternating, time_calls
from clients.models import Agency, Client, User

PAGE_SIZE = settings.ACTIVITYLOG_PAGE_SIZE


def signed_in(email: str) -> HttpClient:
    http = HttpClient()
    http.force_login(User.objects.get(email=email))
    return http


def staff_for(client_id: int) -> HttpClient:
    """A manager of the client's agency: may read its Activity Log."""
    agency = Agency.objects.get(clients__pk=client_id)
    return signed_in(manager_email(int(agency.slug.removeprefix("bench-"))))


def _get(http: HttpClient, url: str, **headers):
    def call():
        response = http.get(url, **headers)
        if response.status_code != 200:
            raise AssertionError(f"GET {url} answered {response.status_code}, not 200")
        return response

    return call


def activity_tab_url(client_id: int) -> str:
    return f"/clients/{client_id}/activity/"


def first_pages(dataset: Dataset, scale: Scale, only: tuple[str, ...] = ()) -> dict[str, Samples]:
    """#1: the Activity Log tab of clients with 1 k, 100 k and 1 M events, first page."""
    results = {}
    for label, probe in dataset.probes.items():
        if only and label not in only:
            continue
        http = staff_for(probe.client_id)
        results[label] = time_calls(_get(http, activity_tab_url(probe.client_id)), iterations=scale.page_iterations)
    return results


def _keyset_at_depth(client_id: int, depth: int) -> Keyset:
    last = (
        AuthEvent.objects.filter(client_id=client_id).order_by("-occurred_at", "-id")
        .values_list("occurred_at", "id")[depth - 1: depth].get()
    )
    return Keyset(*last)


def load_older(dataset: Dataset, scale: Scale) -> dict[str, Samples]:
    """
    #2: the whale's tab `load_older_depth` rows back through the keyset cursor, beside its
    first page (the same view, alternated), and the same depth fetched with OFFSET.
    """
    client_id, depth = dataset.whale.client_id, scale.load_older_depth
    keyset = _keyset_at_depth(client_id, depth)
    http = staff_for(client_id)
    url = activity_tab_url(client_id)
    first, deep = time_alternating(
        [_get(http, url), _get(http, url, query_params={"cursor": keyset.encode()})],
        iterations=scale.page_iterations,
    )

    # The queries alone: the tab's own selector at that depth, and OFFSET on the same order.
    client = Client.objects.get(pk=client_id)
    keyset_query = time_calls(
        lambda: auth_events_page(client=client, filters=EventFilters(), tz=UTC, after=keyset, limit=PAGE_SIZE),
        iterations=scale.page_iterations,
    )
    events = AuthEvent.objects.filter(client_id=client_id).select_related("user").order_by("-occurred_at", "-id")
    offset_query = time_calls(
        lambda: list(events[depth: depth + PAGE_SIZE + 1]), iterations=scale.offset_iterations, warmup=1
    )
    return {"first": first, "keyset": deep, "keyset_sql": keyset_query, "offset_sql": offset_query}


def admin_changelists(dataset: Dataset, scale: Scale) -> dict[str, Samples]:
    """#3: Django admin's event list on the whole table, as a platform superuser."""
    http = signed_in(ROOT_EMAIL)
    whale = Client.objects.select_related("agency").get(pk=dataset.whale.client_id)
    # A client in the long tail, found by a word of its name as staff would type it.
    tail = Client.objects.filter(email__endswith="@bench-clients.test").order_by("pk")[len(dataset.probes) + 40]
    portal_email = User.objects.filter(client=tail).order_by("pk").values_list("email", flat=True)[0]
    url = "/admin/activitylog/authevent/"
    variants = {
        "unfiltered": {},
        "agency (the whale's)": {"agency__id__exact": whale.agency_id},
        "agency (a small one)": {"agency__id__exact": tail.agency_id},
        "event type": {"event_type__exact": "login_failed"},
        "search: client name": {"q": tail.name},
        "search: portal user email": {"q": portal_email},
    }
    return {
        label: time_calls(_get(http, url, query_params=params), iterations=scale.admin_iterations, warmup=2)
        for label, params in variants.items()
    }
