from django.conf import settings
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET
from django_htmx.http import reswap, retarget

from activitylog.access import client_for_activity_log, may_export_logs
from activitylog.forms import ActivityFilterForm
from activitylog.rows import details_context, prepare_rows
from activitylog.security import event_details, failure_summary
from activitylog.selectors import auth_events_count, auth_events_page, login_summary
from clients.staff import StaffHttpRequest, staff_required

TEMPLATE = "activitylog/activity_tab.html"
DETAILS_TEMPLATE = "activitylog/event_details.html"
# The tab counts the matching events up to this many, then says "more than".
COUNT_CAP = 10_000


@require_GET
@staff_required
def activity_tab(request: StaffHttpRequest, client_id: int) -> HttpResponse:
    """
    The Activity Log tab of Client Details.

    A direct visit renders the whole page. htmx asks for pieces of the same template:
    the tab (switching tabs), the results (changing a filter) or older rows ("Load older").
    """
    client = client_for_activity_log(request.user, client_id)
    form = ActivityFilterForm(request.GET, client=client)
    context = {
        "client": client,
        "active_tab": "activity",
        "form": form,
        "portal_users": client.portal_users.order_by("email"),
        "can_export": may_export_logs(request.membership),
    }
    if not form.is_valid():
        return _filter_errors(request, context, form)

    cursor = form.cleaned_data["cursor"]
    tz = timezone.get_current_timezone()
    filters = form.filters(tz)
    events, next_keyset = auth_events_page(
        client=client, filters=filters, tz=tz, after=cursor, limit=settings.ACTIVITYLOG_PAGE_SIZE
    )
    context.update(
        events=prepare_rows(events, tz=tz),
        is_first_page=cursor is None,
        next_cursor=next_keyset.encode() if next_keyset else "",
        filter_query=form.filter_query(),
    )
    if request.htmx and cursor is not None:
        return render(request, TEMPLATE + "#older-rows", context)
    chips = _chips(request, form)
    count = auth_events_count(client=client, filters=filters, tz=tz, cap=COUNT_CAP)
    context.update(
        summary=login_summary(client=client),
        is_filtered=bool(chips),
        chips=chips,
        count_text=_count_text(count, filtered=bool(chips)),
        failures=failure_summary(client=client),
    )
    if request.htmx:
        if request.htmx.target == "activity-results":
            return render(request, TEMPLATE + "#results", context)
        return render(request, TEMPLATE + "#tab", context)
    return render(request, TEMPLATE, context)


def _chips(request: StaffHttpRequest, form: ActivityFilterForm) -> list[dict]:
    """Each filter in force, with the link that removes it (and keeps the others)."""
    base = request.path
    return [
        {"label": label, "value": value, "url": base + (f"?{rest}" if (rest := form.filter_query(without=name)) else "")}
        for name, label, value in form.active()
    ]


def _count_text(count: int, *, filtered: bool) -> str:
    """`1,234,567 events in all`, `More than 10,000 events match these filters`: never a slow COUNT of a whale."""
    if filtered and count > COUNT_CAP:
        number, noun = f"More than {COUNT_CAP:,}", "events"
    else:
        number, noun = f"{count:,}", "event" if count == 1 else "events"
    if not filtered:
        return f"{number} {noun} in all"
    return f"{number} {noun} {'matches' if noun == 'event' else 'match'} these filters"


@require_GET
@staff_required
def event_detail(request: StaffHttpRequest, client_id: int, event_id: int) -> HttpResponse:
    """
    One event in full: what an Activity Log row shows when it is expanded.

    htmx asks for the `details-row` partial, which the row's disclosure button puts under
    the row; without JavaScript the button is a link to this page. Access is the tab's.
    """
    client = client_for_activity_log(request.user, client_id)
    details = event_details(client=client, event_id=event_id)
    if details is None:
        raise Http404("No such event.")
    context = {"client": client, "active_tab": "activity", "details": details, "event": details.event,
               **details_context(details, tz=timezone.get_current_timezone())}
    if request.htmx:
        return render(request, DETAILS_TEMPLATE + "#details-row", context)
    return render(request, DETAILS_TEMPLATE, context)


def _filter_errors(request: StaffHttpRequest, context: dict, form: ActivityFilterForm) -> HttpResponse:
    """
    The tab with the form's errors shown inline above the (emptied) results.

    422, which htmx is set to swap (base.html's htmx-config) and django-htmx's DEBUG
    error page does not take over, so the old rows never stay under a filter that was
    not applied. A tampered "Load older" link shows its error in the results, not in
    the row where the link was.
    """
    context["errors"] = [e for errors in form.errors.values() for e in errors]
    if not request.htmx:
        return render(request, TEMPLATE, context, status=422)
    if request.htmx.target == "client-tabs":
        return render(request, TEMPLATE + "#tab", context, status=422)
    response = render(request, TEMPLATE + "#results", context, status=422)
    return reswap(retarget(response, "#activity-results"), "innerHTML")
