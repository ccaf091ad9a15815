"""
Measurement #11 (issue 11): the Clients list with its engagement columns (last login,
logins in the last 30 days), sorted and filtered by them, as the whale's agency manager
opens it through Django's full request path; and the queries alone over every client of
the dataset, as if one agency had all 5,000.
"""

from django.utils import timezone

from activitylog.selectors import clients_not_seen, clients_with_engagement
from bench.dataset import Dataset
from bench.pages import staff_for
from bench.scale import Scale
from bench.stats import Samples, time_alternating, time_calls
from clients.models import Client
from clients.selectors import clients_ordered

# The Clients page with each sort and filter: label -> query parameters.
LIST_VARIANTS = {
    "default (by name)": {},
    "sorted by last login, newest first": {"sort": "-last_login"},
    "sorted by last login, oldest first": {"sort": "last_login"},
    "sorted by logins in the last 30 days": {"sort": "-logins_30d"},
    "not seen in 30 days": {"seen": "30"},
    "never logged in": {"seen": "never"},
    "premium only": {"premium": "1"},
    "premium, not seen in 7 days, by last login": {"premium": "1", "seen": "7", "sort": "last_login"},
}


def _page(http, url: str, params: dict | None = None):
    def call():
        response = http.get(url, query_params=params or {})
        if response.status_code != 200:
            raise AssertionError(f"GET {url} {params} answered {response.status_code}, not 200")

    return call


def client_lists(dataset: Dataset, scale: Scale) -> dict[str, Samples]:
    """
    The whale's agency's Clients page (the whale, its 1 M events, is one of its clients),
    each variant in turn, so that a burst of background load falls on all of them alike.
    """
    http = staff_for(dataset.whale.client_id)
    calls = [_page(http, "/clients/", params) for params in LIST_VARIANTS.values()]
    return dict(zip(LIST_VARIANTS, time_alternating(calls, iterations=scale.page_iterations), strict=True))


def whale_overview(dataset: Dataset, scale: Scale) -> Samples:
    """The whale's Overview tab: each portal user's last login and all-time login count."""
    http = staff_for(dataset.whale.client_id)
    return time_calls(_page(http, f"/clients/{dataset.whale.client_id}/"), iterations=scale.page_iterations)


def whole_table_queries(dataset: Dataset, scale: Scale) -> dict[str, Samples]:
    """The list's first page as a query over every client of the dataset, by the same selectors."""

    def first_page(sort: str, **not_seen) -> list:
        now = timezone.now()
        clients = Client.objects.filter(is_archived=False)
        if not_seen:
            clients = clients_not_seen(clients, days=not_seen["days"], now=now)
        clients = clients_with_engagement(clients, now=now)
        return list(clients_ordered(clients, key=sort.removeprefix("-"), descending=sort.startswith("-"))[:50])

    variants = {
        "sorted by last login": lambda: first_page("-last_login"),
        "sorted by logins in the last 30 days": lambda: first_page("-logins_30d"),
        "not seen in 30 days": lambda: first_page("name", days=30),
        "never logged in": lambda: first_page("name", days=None),
    }
    return {label: time_calls(call, iterations=scale.page_iterations) for label, call in variants.items()}
