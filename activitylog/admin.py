from ipaddress import ip_address

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Q
from django.utils.functional import cached_property
from django.utils.text import smart_split, unescape_string_literal

from activitylog.access import may_inspect_every_log
from activitylog.chain import format_timestamp
from activitylog.models import AuthEvent
from clients.clock import spell, spell_utc
from clients.models import User


def _is_ip(word: str) -> bool:
    try:
        ip_address(word)
    except ValueError:
        return False
    return True


class CappedCountPaginator(Paginator):
    """
    Counts at most CAP rows, so the changelist never COUNT(*)s millions of events.

    Admin pages past the cap are not offered; narrow the list with a filter or search.
    """

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        query = self.object_list.values("pk").order_by()[: self.CAP + 1].query
        sql, params = query.sql_with_params()
        with connections[self.object_list.db].cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM ({sql}) capped", params)
            return cursor.fetchone()[0]


@admin.register(AuthEvent)
class AuthEventAdmin(admin.ModelAdmin):
    """Read-only inspection of the activity log for platform superusers."""

    list_display = ("occurred", "occurred_local", "event_type", "client", "agency", "email", "ip", "browser", "os", "reason")
    list_filter = ("event_type", "agency", "occurred_at")
    # Shows the search box; get_search_results() decides what these words match.
    search_fields = ("client__name", "client__email", "email", "=ip")
    list_select_related = ("client", "agency")
    ordering = ("-occurred_at", "-id")
    paginator = CappedCountPaginator
    show_full_result_count = False
    # Facet counts would COUNT every filter option over the whole table.
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 100
    actions = None
    # The detail page spells the time as every page does (clients/clock.py), in UTC and in
    # the agency's zone, beside the exact stored value that the hash covers.
    readonly_fields = fields = ["occurred", "occurred_local", "stored_timestamp",
                                *(f.name for f in AuthEvent._meta.fields if f.name != "occurred_at")]

    class Media:
        css = {"all": ["css/admin.css"]}

    @admin.display(description="occurred (UTC)", ordering="occurred_at")
    def occurred(self, event: AuthEvent) -> str:
        return spell_utc(event.occurred_at)

    @admin.display(description="agency's local time")
    def occurred_local(self, event: AuthEvent) -> str:
        return spell(event.occurred_at, event.agency.tzinfo)

    @admin.display(description="stored timestamp (hashed)")
    def stored_timestamp(self, event: AuthEvent) -> str:
        return format_timestamp(event.occurred_at)

    def get_search_results(self, request, queryset, search_term):
        """
        Each word is looked up in the small tables first: the portal users whose email, or
        whose client's name or email, contains it. The events are then filtered by those
        user ids (and by IP, for a word that is one). Django's default, a LIKE on every
        row of the event table joined to its client, took 20 s on 10 M events.

        A user's events belong to the user's client, so matching the client through the
        user is the same match; the email searched is the user's current one.
        """
        words = [unescape_string_literal(w) if w[0] in "\"'" else w for w in smart_split(search_term)]
        if not words:
            return queryset, False
        users: set[int] | None = None  # portal users that match every word so far
        for word in words:
            matching = set(
                User.objects.filter(client__isnull=False)
                .filter(Q(email__icontains=word) | Q(client__name__icontains=word) | Q(client__email__icontains=word))
                .order_by().values_list("pk", flat=True)
            )
            if _is_ip(word):
                queryset = queryset.filter(Q(ip=word) | Q(user_id__in=matching))
            else:
                users = matching if users is None else users & matching
        if users is not None:
            queryset = queryset.filter(user_id__in=users)
        return queryset, False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return may_inspect_every_log(request.user)

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)
