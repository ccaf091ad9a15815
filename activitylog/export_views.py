"""
"Export CSV" on the Activity Log tab: the current filter, as a streamed download.

Async on purpose. Under ASGI, Django buffers a sync iterator given to
StreamingHttpResponse entirely before sending it; an async iterator is sent chunk by
chunk, so a whale client's whole log never sits in memory. The database work itself is
sync, so each chunk is made in the request's thread via sync_to_async.

`?excel=1` (the tab's "Export for Excel") starts the file with a UTF-8 byte order mark.
The file is named after the client: `activity-log-<name>-<id>-<UTC time>.csv`.
"""

from collections.abc import AsyncIterator
from urllib.parse import quote

from asgiref.sync import sync_to_async
from django.http import HttpResponse, HttpResponseBadRequest, QueryDict, StreamingHttpResponse
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_GET

from activitylog import export
from activitylog.access import client_for_activity_export
from activitylog.forms import ActivityFilterForm
from activitylog.selectors import auth_events_filtered
from clients.models import Client
from clients.staff import StaffHttpRequest, staff_required

EXCEL_VALUES = {"0": False, "1": True}
# Long client names are cut: the name is a hint, the id tells clients apart.
FILENAME_NAME_CHARS = 50


class _BadExport(Exception):
    """A query the export cannot apply; its message is the 400's body."""


def _excel(query: QueryDict) -> bool:
    values = query.getlist("excel")
    if len(values) > 1 or (values and values[0] not in EXCEL_VALUES):
        raise _BadExport("excel must be 1 (a file for Excel, with a byte order mark) or 0, given once.")
    return bool(values) and EXCEL_VALUES[values[0]]


def _export_request(request: StaffHttpRequest, client_id: int):
    """(client, events, excel) for a valid request; raises 403/404 like the tab, _BadExport for a bad query."""
    client = client_for_activity_export(request.user, client_id)
    form = ActivityFilterForm(request.GET, client=client)
    if not form.is_valid():
        raise _BadExport("That filter could not be applied: " + " ".join(e for es in form.errors.values() for e in es))
    excel = _excel(request.GET)
    # Whole days in the zone the viewer reads times in, exactly as the tab shows them.
    tz = timezone.get_current_timezone()
    events = auth_events_filtered(client=client, filters=form.filters(tz), tz=tz)
    return client, events, excel


def content_disposition(client: Client) -> str:
    """
    `attachment` named after the client: `filename` in ASCII for every browser, and, when
    the name has other letters, `filename*` in UTF-8 (RFC 6266) for those that read it.
    """
    stamp = f"{client.pk}-{timezone.now():%Y%m%d-%H%M%S}.csv"

    def name(*, allow_unicode: bool) -> str:
        slug = slugify(client.name, allow_unicode=allow_unicode)[:FILENAME_NAME_CHARS].strip("-_")
        return f"activity-log-{slug or 'client'}-{stamp}"

    ascii_name, unicode_name = name(allow_unicode=False), name(allow_unicode=True)
    header = f'attachment; filename="{ascii_name}"'  # slugs hold no quote or backslash
    if unicode_name != ascii_name:
        header += f"; filename*=UTF-8''{quote(unicode_name)}"
    return header


async def _csv_stream(events, *, excel: bool) -> AsyncIterator[bytes]:
    chunks = export.export_chunks(events, bom=excel)
    # thread_sensitive (the default): every step runs in the request's one sync thread,
    # so the database connection and any COPY in progress stay with it.
    try:
        while (chunk := await sync_to_async(next)(chunks, None)) is not None:
            if chunk:
                yield chunk
    finally:
        # A client that disconnects halfway ends the query (and a COPY) right away.
        await sync_to_async(chunks.close)()


@require_GET
@staff_required
async def activity_export(request: StaffHttpRequest, client_id: int) -> HttpResponse:
    """The client's activity log under the tab's filters, as CSV (see activitylog/export.py)."""
    try:
        client, events, excel = await sync_to_async(_export_request)(request, client_id)
    except _BadExport as exc:
        return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")
    response = StreamingHttpResponse(_csv_stream(events, excel=excel), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition(client)
    response["Cache-Control"] = "private, no-store"
    return response
