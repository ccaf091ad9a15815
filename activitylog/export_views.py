"""
"Export CSV" on the Activity Log tab: the current filter, as a streamed download.

Async on purpose. Under ASGI, Django buffers a sync iterator given to
StreamingHttpResponse entirely before sending it; an async iterator is sent chunk by
chunk, so a whale client's whole log never sits in memory. The database work itself is
sync, so each chunk is made in the request's thread via sync_to_async.
"""

from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async
from django.http import HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from activitylog import export
from activitylog.access import client_for_activity_export
from activitylog.forms import ActivityFilterForm
from activitylog.selectors import auth_events_filtered
from clients.staff import StaffHttpRequest, staff_required


def _export_request(request: StaffHttpRequest, client_id: int):
    """(events, filename) for a valid request, or (None, errors); raises 403/404 like the tab."""
    client = client_for_activity_export(request.user, client_id)
    form = ActivityFilterForm(request.GET, client=client)
    if not form.is_valid():
        return None, [e for errors in form.errors.values() for e in errors]
    # Whole days in the agency's zone, exactly as the tab shows them.
    events = auth_events_filtered(client=client, filters=form.filters(), tz=client.agency.tzinfo)
    filename = f"activity-log-client-{client.pk}-{timezone.now():%Y%m%d-%H%M%S}.csv"
    return events, filename


async def _csv_stream(events) -> AsyncIterator[bytes]:
    rows = export.export_rows(events)
    chunks = export.csv_chunks(rows)
    # thread_sensitive (the default): every step runs in the request's one sync thread,
    # so the database connection and any COPY in progress stay with it.
    try:
        while (chunk := await sync_to_async(next)(chunks, None)) is not None:
            if chunk:
                yield chunk.encode()
    finally:
        # A client that disconnects halfway ends the query (and a COPY) right away.
        await sync_to_async(_close)(chunks, rows)


def _close(*iterators) -> None:
    for iterator in iterators:
        iterator.close()


@require_GET
@staff_required
async def activity_export(request: StaffHttpRequest, client_id: int) -> HttpResponse:
    """The client's activity log under the tab's filters, as CSV (see activitylog/export.py)."""
    events, detail = await sync_to_async(_export_request)(request, client_id)
    if events is None:
        return HttpResponseBadRequest(
            "That filter could not be applied: " + " ".join(detail), content_type="text/plain; charset=utf-8"
        )
    response = StreamingHttpResponse(_csv_stream(events), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{detail}"'
    response["Cache-Control"] = "private, no-store"
    return response
