"""
Exports of the activity log: the one place that turns events into CSV or JSONL.

`export_activity_log` and the Activity Log tab's "Export CSV" download both read rows
with `export_rows` and format them with `csv_chunks` or `jsonl_chunks`, so a file looks
the same whichever made it and whichever database it came from.

Rows stream in constant memory. On PostgreSQL they come from one
`COPY (SELECT ...) TO STDOUT`, which is a single consistent snapshot and the fastest
way out of the server. Elsewhere (SQLite) they come in keyset-paged chunks. Either way
the values are typed Python tuples and the formatting below is the same code.

**Spreadsheet safety (CSV only).** A cell that a spreadsheet would read as a formula is
neutralised: if a value of one of NEUTRALISED_COLUMNS (the free text that users, their
browsers or staff supply) starts with `=`, `+`, `-`, `@`, a tab or a carriage return, a
single quote `'` is put in front of it. Nothing else is changed. The other columns are
numbers, fixed vocabularies, hex digests, IP addresses and timestamps, which cannot start
with those characters. JSONL holds every value exactly as stored.
"""

import csv
import io
import json
from collections.abc import Iterable, Iterator

from django.db import connections
from django.db.models import Max, Q, QuerySet

from activitylog.chain import format_timestamp

# The columns of both formats, in order. JSONL uses them as keys.
COLUMNS = (
    "event_id", "occurred_at", "event_type", "agency", "client_id", "client_name",
    "user_email", "ip", "user_agent", "browser", "os", "session_ref", "reason", "hash",
)
# What each column is read from, in the same order.
_FIELDS = (
    "id", "occurred_at", "event_type", "agency__slug", "client_id", "client__name",
    "email", "ip", "user_agent", "browser", "os", "session_ref", "reason", "hash",
)
# PostgreSQL types of _FIELDS, so COPY rows load as the ORM would load them. inet is read
# as text: its output form is what the ORM returns too.
_COPY_TYPES = (
    "int8", "timestamptz", "text", "text", "int8", "text",
    "text", "text", "text", "text", "text", "text", "text", "text",
)

NEUTRALISED_COLUMNS = ("agency", "client_name", "user_email", "user_agent", "browser", "os")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

_OCCURRED_AT = COLUMNS.index("occurred_at")
_IP = COLUMNS.index("ip")
_NEUTRALISED = tuple(COLUMNS.index(name) for name in NEUTRALISED_COLUMNS)

# Big enough that per-chunk overhead (a write, or a hop to the event loop) is negligible,
# small enough that memory stays flat.
CHUNK_CHARS = 64 * 1024
KEYSET_BATCH = 1000


def export_rows(events: QuerySet) -> Iterator[tuple]:
    """
    Every event of `events` as a tuple in COLUMNS order, by occurred_at then id.

    Values are typed (ints, an aware datetime, str, None for a missing IP). Memory use
    does not grow with the number of rows. Call `close()` on the iterator when stopping
    early: on PostgreSQL that cancels the COPY and frees the connection at once.
    """
    events = events.order_by("occurred_at", "id").values_list(*_FIELDS)
    if connections[events.db].vendor == "postgresql":
        return _rows_by_copy(events)
    return _rows_by_keyset(events)


def _rows_by_copy(events: QuerySet) -> Iterator[tuple]:
    sql, params = events.query.sql_with_params()
    connection = connections[events.db]
    with connection.cursor() as cursor, connection.wrap_database_errors:
        # The psycopg cursor under Django's wrapper: COPY is not part of the DB-API. Its
        # errors still reach callers as Django's DatabaseError, like any query's.
        with cursor.cursor.copy(f"COPY ({sql}) TO STDOUT", params) as copy:
            copy.set_types(_COPY_TYPES)
            yield from copy.rows()


def _rows_by_keyset(events: QuerySet) -> Iterator[tuple]:
    # Rows recorded after the export started are left out, so the file is the log as it
    # was at the start. Exact where writers are serialised (SQLite): ids commit in order.
    ceiling = events.aggregate(ceiling=Max("id"))["ceiling"]
    if ceiling is None:
        return
    events = events.filter(id__lte=ceiling)
    after = None
    while True:
        page = events
        if after is not None:
            occurred_at, event_id = after
            # The redundant `>=` bound lets an (occurred_at, id) index start at the key.
            page = page.filter(
                Q(occurred_at__gte=occurred_at), Q(occurred_at__gt=occurred_at) | Q(id__gt=event_id)
            )
        rows = list(page[:KEYSET_BATCH])
        yield from rows
        if len(rows) < KEYSET_BATCH:
            return
        after = (rows[-1][_OCCURRED_AT], rows[-1][0])
        del rows  # so that two batches are never in memory at once


def _neutralised(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def csv_cells(row: tuple) -> list:
    """One row as CSV cells: UTC timestamp, empty for no IP, formulas neutralised."""
    cells = list(row)
    cells[_OCCURRED_AT] = format_timestamp(cells[_OCCURRED_AT])
    if cells[_IP] is None:
        cells[_IP] = ""
    for index in _NEUTRALISED:
        cells[index] = _neutralised(cells[index])
    return cells


def json_record(row: tuple) -> dict:
    """One row as a JSONL record: exact values, UTC timestamp, null for no IP."""
    record = dict(zip(COLUMNS, row))
    record["occurred_at"] = format_timestamp(record["occurred_at"])
    return record


def csv_chunks(rows: Iterable[tuple]) -> Iterator[str]:
    """
    RFC 4180 CSV text with a header row, in chunks of about CHUNK_CHARS characters.

    Comma-separated, CRLF line ends, a field quoted with `"` when it holds a comma, a
    quote, CR or LF, and a quote inside it doubled. UTF-8 once encoded.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(csv_cells(row))
        if buffer.tell() >= CHUNK_CHARS:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def jsonl_chunks(rows: Iterable[tuple]) -> Iterator[str]:
    """One JSON object a line (LF), keys in COLUMNS order, in chunks of about CHUNK_CHARS."""
    lines: list[str] = []
    size = 0
    for row in rows:
        line = json.dumps(json_record(row), ensure_ascii=False, separators=(",", ":")) + "\n"
        lines.append(line)
        size += len(line)
        if size >= CHUNK_CHARS:
            yield "".join(lines)
            lines, size = [], 0
    yield "".join(lines)


FORMATS = {"csv": csv_chunks, "jsonl": jsonl_chunks}
