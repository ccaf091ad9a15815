from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import ProtectedError
from django.shortcuts import redirect

from clients.models import Agency, Client, StaffMembership, User


class StaffMembershipInline(admin.TabularInline):
    model = StaffMembership
    extra = 0


@admin.register(Agency)
class AgencyAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "time_zone")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(StaffMembership)
class StaffMembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "agency", "role")
    list_filter = ("agency", "role")
    search_fields = ("user__email",)
    list_select_related = ("user", "agency")
    autocomplete_fields = ("user",)


class PortalUserInline(admin.TabularInline):
    model = User
    fk_name = "client"
    fields = ("email", "full_name", "is_active")
    readonly_fields = ("email",)
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    list_display = ("name", "agency", "email", "company_name", "status", "is_archived", "is_premium")
    list_filter = ("agency", "status", "is_archived", "is_premium")
    search_fields = ("name", "email", "company_name")
    list_select_related = ("agency",)
    inlines = [PortalUserInline]
    actions = ["archive"]

    @admin.action(description="Archive selected clients (keeps their history)")
    def archive(self, request, queryset):
        count = queryset.update(is_archived=True)
        self.message_user(request, f"Archived {count} client(s).", messages.SUCCESS)

    def get_actions(self, request):
        # Bulk delete would stop at the first client with history; archiving is the way.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def get_deleted_objects(self, objs, request):
        # Listing every protected event would render millions of rows for a busy client.
        with_history = [c for c in objs if c.protected_history()]
        if with_history:
            protected = [f"The activity log of {c.name}. Archive the client instead." for c in with_history]
            return [], {}, set(), protected
        return super().get_deleted_objects(objs, request)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except ProtectedError as exc:
            self.message_user(request, exc.args[0], messages.ERROR)
            return redirect("admin:clients_client_change", object_id)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ("email",)
    list_display = ("email", "full_name", "client", "is_staff", "is_superuser", "is_active")
    list_filter = ("is_staff", "is_superuser", "is_active")
    search_fields = ("email", "full_name")
    list_select_related = ("client",)
    autocomplete_fields = ("client",)
    inlines = [StaffMembershipInline]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("full_name", "client")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
