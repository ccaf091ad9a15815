from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property

from activitylog.chain import format_timestamp
from activitylog.models import AuthEvent


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

    list_display = ("occurred", "event_type", "client", "agency", "email", "ip", "browser", "os", "reason")
    list_filter = ("event_type", "agency", "occurred_at")
    search_fields = ("client__name", "client__email", "email", "=ip")
    list_select_related = ("client", "agency")
    ordering = ("-occurred_at", "-id")
    paginator = CappedCountPaginator
    show_full_result_count = False
    # Facet counts would COUNT every filter option over the whole table.
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 100
    actions = None
    readonly_fields = [f.name for f in AuthEvent._meta.fields]

    @admin.display(description="occurred at (UTC)", ordering="occurred_at")
    def occurred(self, event: AuthEvent) -> str:
        return format_timestamp(event.occurred_at).replace("T", " ").replace("Z", "")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        # Agency staff read logs in the CRM, scoped to their agency. Django admin spans
        # every agency, so only platform superusers get in.
        return request.user.is_active and request.user.is_superuser

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)
