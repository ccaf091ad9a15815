"""
Exports of the activity log: the one place that turns events into CSV or JSONL.

`export_activity_log` and the Activity Log tab's "Export CSV" download both take their
bytes from `export_chunks`, so a file looks the same whichever made it and whichever
database it came from.

**Order.** Oldest first: by `occurred_at`, then by `event_id` for events at the same
instant. (A `session_expired` event is recorded after the moment it carries, so the order
of ids is not the order of time.)

**Columns**, in COLUMNS order. New columns are only ever added at the end, so scripts
that read the file by position keep working. `occurred_at` is UTC with microseconds;
`occurred_at_local` is the same moment in the agency's zone, to the second, with the
zone's abbreviation of that moment as Python's `%Z` gives it (`2026-11-01 01:30:00 EDT`,
then an hour later `2026-11-01 01:30:00 EST`); `time_zone` is that zone's IANA name;
`reason` is the code (`bad_password`) and `reason_text` its label (`Wrong password`).

Rows stream in constant memory. On PostgreSQL the CSV is made by the server itself: one
`COPY (SELECT <formatted columns>) TO STDOUT WITH (FORMAT csv)` whose rows are passed on
as they come, only their line ends changed; formatting each row in Python was nine
tenths of an export's time. Everything else (CSV on SQLite, JSONL everywhere) reads typed
rows with `export_rows` and formats them below, in Python. A test holds the two CSV
paths to the same bytes.

**Spreadsheet safety (CSV only).** A cell that a spreadsheet would read as a formula is
neutralised: if a value of one of NEUTRALISED_COLUMNS (the free text that users, their
browsers or staff supply) starts with `=`, `+`, `-`, `@`, a tab or a carriage return, a
single quote `'` is put in front of it. Nothing else is changed. The other columns are
numbers, fixed vocabularies, hex digests, IP addresses, zone names and timestamps, which
cannot start with those characters. JSONL holds every value exactly as stored.

**Excel.** With `bom=True` a CSV starts with a UTF-8 byte order mark, without which Excel
reads UTF-8 as the system's legacy code page (`ü` as `Ã¼`).
"""

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from zoneinfo import ZoneInfo

from django.db import connections, transaction
from django.db.models import Exists, Max, Min, OuterRef, Q, QuerySet
from django.db.models.expressions import Col
from django.db.models.lookups import Lookup
from django.db.models.sql.where import WhereNode

from activitylog.chain import format_timestamp
from activitylog.models import FailureReason, SessionEndReason
from agencyhandy.lib.time_zones import zone_periods
from clients.models import Agency

# The columns of both formats, in order. JSONL uses them as keys. Add new ones at the end.
COLUMNS = (
    "event_id", "occurred_at", "event_type", "agency", "client_id", "client_name",
    "user_email", "ip", "user_agent", "browser", "os", "session_ref", "reason", "hash",
    "occurred_at_local", "time_zone", "reason_text",
)
# What is read for each row: the first fourteen columns, then the agency's zone, from
# which the last three columns are made.
_FIELDS = (
    "id", "occurred_at", "event_type", "agency__slug", "client_id", "client__name",
    "email", "ip", "user_agent", "browser", "os", "session_ref", "reason", "hash",
    "agency__time_zone",
)
# PostgreSQL types of _FIELDS, so COPY rows load as the ORM would load them. inet is read
# as text: its output form is what the ORM returns too.
_COPY_TYPES = (
    "int8", "timestamptz", "text", "text", "int8", "text",
    "text", "text", "text", "text", "text", "text", "text", "text",
    "text",
)

NEUTRALISED_COLUMNS = ("agency", "client_name", "user_email", "user_agent", "browser", "os")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
REASON_TEXTS = {code: str(label) for code, label in FailureReason.choices + SessionEndReason.choices}
BOM = "\ufeff"

_OCCURRED_AT = COLUMNS.index("occurred_at")
_REASON = COLUMNS.index("reason")
_IP = COLUMNS.index("ip")
_NEUTRALISED = tuple(COLUMNS.index(name) for name in NEUTRALISED_COLUMNS)

# Big enough that per-chunk overhead (a write, or a hop to the event loop) is negligible,
# small enough that memory stays flat.
CHUNK_CHARS = 64 * 1024
KEYSET_BATCH = 1000

Progress = Callable[[int], None]


def export_chunks(events: QuerySet, *, output_format: str = "csv", bom: bool = False,
                  progress: Progress | None = None) -> Iterator[bytes]:
    """
    The whole export file of `events` as UTF-8 bytes, in chunks that each end with a row.

    `output_format` is "csv" or "jsonl"; `bom` (CSV only) puts a UTF-8 byte order mark
    first, for Excel. `progress`, if given, is called with the number of rows in each
    chunk. Memory use does not grow with the number of rows. Call `close()` on the
    iterator when stopping early: on PostgreSQL that cancels the query at once.
    """
    if output_format not in FORMATS:
        raise ValueError(f"Unknown export format {output_format!r}.")
    if bom and output_format != "csv":
        raise ValueError("Only a CSV export can start with a byte order mark.")
    if output_format == "csv" and connections[events.db].vendor == "postgresql":
        return _csv_by_copy(events, bom=bom, progress=progress or _ignore)
    return _formatted_in_python(events, output_format=output_format, bom=bom, progress=progress or _ignore)


def _ignore(rows: int) -> None:
    pass


# Python formatting: typed rows ------------------------------------------------------------


def export_rows(events: QuerySet) -> Iterator[tuple]:
    """
    Every event of `events` as a tuple in COLUMNS order, by occurred_at then id.

    Values are typed (ints, an aware datetime, str, None for a missing IP). Memory use
    does not grow with the number of rows. Call `close()` on the iterator when stopping
    early: on PostgreSQL that cancels the COPY and frees the connection at once.
    """
    events = events.order_by("occurred_at", "id").values_list(*_FIELDS)
    if connections[events.db].vendor == "postgresql":
        return _completed(_rows_by_copy(events))
    return _completed(_rows_by_keyset(events))


def _completed(rows: Iterator[tuple]) -> Iterator[tuple]:
    """Read rows (_FIELDS) as export rows (COLUMNS): the local time and the reason's text added."""
    try:
        for row in rows:
            yield (*row[:-1], local_time(row[_OCCURRED_AT], row[-1]), row[-1], reason_text(row[_REASON]))
    finally:
        rows.close()


def local_time(moment, zone_name: str) -> str:
    """`moment` in the IANA zone `zone_name`, as `2026-11-25 21:09:32 EST` (the zone's abbreviation then)."""
    local = moment.astimezone(ZoneInfo(zone_name))
    # isoformat, not strftime("%Y"): four-digit years always, as PostgreSQL spells them.
    return f"{local.replace(tzinfo=None, microsecond=0).isoformat(sep=' ')} {local.tzname()}"


def reason_text(code: str) -> str:
    """The label of a reason code (`Wrong password`); "" for none, and an unknown code as itself."""
    return REASON_TEXTS.get(code, code)


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


def csv_chunks(rows: Iterable[tuple], *, bom: bool = False) -> Iterator[str]:
    """
    RFC 4180 CSV text with a header row, in chunks of about CHUNK_CHARS characters.

    Comma-separated, CRLF line ends, a field quoted with `"` when it holds a comma, a
    quote, CR or LF, and a quote inside it doubled. UTF-8 once encoded; with `bom`, the
    text starts with U+FEFF.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    buffer.write(_header(bom=bom))
    for row in rows:
        writer.writerow(csv_cells(row))
        if buffer.tell() >= CHUNK_CHARS:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _header(*, bom: bool) -> str:
    # No column name needs quoting.
    return (BOM if bom else "") + ",".join(COLUMNS) + "\r\n"


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


def _formatted_in_python(events: QuerySet, *, output_format: str, bom: bool, progress: Progress) -> Iterator[bytes]:
    rows = export_rows(events)
    counted = 0

    def counting() -> Iterator[tuple]:
        nonlocal counted
        for row in rows:
            counted += 1
            yield row

    chunks = csv_chunks(counting(), bom=bom) if output_format == "csv" else jsonl_chunks(counting())
    try:
        for chunk in chunks:
            # Each chunk ends with a whole row, so each encodes (and decodes) on its own.
            yield chunk.encode()
            progress(counted)
            counted = 0
    finally:
        chunks.close()
        rows.close()


# PostgreSQL formats the CSV -----------------------------------------------------------------

# The CSV spelling of each column, as SQL over the row `e` (named by _ROW_NAMES). Empty
# text is NULL, because COPY writes NULL as an empty field but '' as `""`, and Python's
# csv writes '' as an empty field. The formula guard tests ascii() of the first character
# (0 for ''): cheaper, on every row and column, than comparing text. Most cells start with
# a letter, above every formula prefix: one comparison lets them through as they are, at
# a third of the full guard's cost.
_FORMULA_CODES = ", ".join(str(ord(prefix)) for prefix in FORMULA_PREFIXES)
_ABOVE_FORMULAS = max(ord(prefix) for prefix in FORMULA_PREFIXES)
_CSV_GUARDED = (
    "CASE WHEN ascii({0}) > %d THEN {0} WHEN ascii({0}) IN (%s) THEN '''' || {0} ELSE NULLIF({0}, '') END"
    % (_ABOVE_FORMULAS, _FORMULA_CODES)
)
_CSV_SELECT = (
    "e.id",
    # FM: no zero padding of a year before 1000, like strftime("%Y").
    """to_char(e.occurred_at AT TIME ZONE 'UTC', 'FMYYYY-MM-DD"T"HH24:MI:SS.US"Z"')""",
    "e.event_type",
    _CSV_GUARDED.format("e.agency"),
    "e.client_id",
    _CSV_GUARDED.format("e.client_name"),
    _CSV_GUARDED.format("e.email"),
    "e.ip",  # inet's output form; NULL when unknown
    _CSV_GUARDED.format("e.user_agent"),
    _CSV_GUARDED.format("e.browser"),
    _CSV_GUARDED.format("e.os"),
    "NULLIF(e.session_ref, '')",
    "NULLIF(e.reason, '')",
    "e.hash",
    "{local_time}",
    "e.time_zone",
    "{reason_text}",
)
_ROW_NAMES = (
    "id", "occurred_at", "event_type", "agency", "client_id", "client_name", "email", "ip", "user_agent",
    "browser", "os", "session_ref", "reason", "hash", "time_zone",
)


def _csv_by_copy(events: QuerySet, *, bom: bool, progress: Progress) -> Iterator[bytes]:
    connection = connections[events.db]
    # One snapshot for the zones, the range and the rows: the zone table then covers
    # every row that COPY reads. (Inside a caller's transaction, the caller's.)
    with transaction.atomic(using=events.db), connection.wrap_database_errors:
        with connection.cursor() as cursor:
            if len(connection.atomic_blocks) == 1:  # ours is the outermost
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cursor.execute("SET LOCAL DateStyle = 'ISO, MDY'")  # how a timestamp's text is spelled
            if _in_index_order(events):
                # Over millions of rows the planner picks a parallel scan that sorts the
                # formatted rows on disk; the (occurred_at, id) index gives them in order,
                # its parallel scan still formatting them on more than one core.
                cursor.execute("SET LOCAL enable_sort = off")
            sql, params = _csv_query(events)
            yield _header(bom=bom).encode()
            if sql is None:
                return
            with cursor.cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", params) as copy:
                yield from _crlf_chunks(copy, progress)


def _in_index_order(events: QuerySet) -> bool:
    """
    Whether `events` is the whole log or a time range of it: rows that the (occurred_at, id)
    index gives in the export's order, so no plan needs to sort them. Any other filter
    (clients, agencies, types) leaves the plan to the planner: a few rows are sorted
    faster than the index is read past the rest.
    """
    def time_only(node) -> bool:
        if isinstance(node, WhereNode):
            return all(time_only(child) for child in node.children)
        return isinstance(node, Lookup) and isinstance(node.lhs, Col) and node.lhs.target.column == "occurred_at"

    return time_only(events.query.where)


def _crlf_chunks(copy, progress: Progress) -> Iterator[bytes]:
    """COPY's rows in chunks of about CHUNK_CHARS bytes, each line end LF made CRLF as RFC 4180 asks."""
    # Each message of COPY TO is one row ending in LF (PostgreSQL's protocol says so), so
    # its last byte is the line end even when a quoted field inside holds a line break.
    lines: list = []
    size = 0
    for row in copy:
        lines.append(row[:-1])  # a memoryview: no copy until the join
        size += len(row)
        if size >= CHUNK_CHARS:
            lines.append(b"")
            yield b"\r\n".join(lines)
            progress(len(lines) - 1)
            lines, size = [], 0
    if lines:
        lines.append(b"")
        yield b"\r\n".join(lines)
        progress(len(lines) - 1)


def _csv_query(events: QuerySet) -> tuple[str | None, list]:
    """The SELECT that spells every CSV cell, by occurred_at then id; (None, []) when nothing matches."""
    events = events.order_by()
    span = events.aggregate(first=Min("occurred_at"), last=Max("occurred_at"))
    if span["first"] is None:
        return None, []
    zone_names = sorted(set(
        Agency.objects.filter(Exists(events.filter(agency_id=OuterRef("pk")))).values_list("time_zone", flat=True)
    ))
    local_sql, local_params = _local_time_sql(zone_names, start=span["first"], end=span["last"])
    reasons_sql = " ".join("WHEN %s THEN %s" for _ in REASON_TEXTS)
    reasons_params = [value for pair in REASON_TEXTS.items() for value in pair]
    select = ", ".join(_CSV_SELECT).format(
        local_time=local_sql, reason_text=f"CASE e.reason WHEN '' THEN NULL {reasons_sql} ELSE e.reason END"
    )
    rows_sql, rows_params = events.values_list(*_FIELDS).query.sql_with_params()
    # A plain subquery: PostgreSQL folds it into the outer query, so that the rows come
    # in order from the (occurred_at, id) index and are formatted as they come, never sorted.
    sql = f"SELECT {select} FROM ({rows_sql}) AS e ({', '.join(_ROW_NAMES)}) ORDER BY e.occurred_at, e.id"
    return sql, [*local_params, *reasons_params, *rows_params]


def _local_time_sql(zone_names: list[str], *, start, end) -> tuple[str, list]:
    """
    SQL for `occurred_at_local`: a CASE over the agencies' zones. In each, the row's period
    is found by a binary search of the period starts (width_bucket), and its offset and
    abbreviation come from Python's zoneinfo (agencyhandy/lib/time_zones.py).
    """
    # A CASE, not a join with a table of zones: a join would cost the planner its estimates,
    # and it sorts a million formatted rows on disk instead of reading them in order.
    period = "width_bucket(e.occurred_at, %s::timestamptz[])"
    # A timestamp's text (ISO DateStyle, set with the query) costs half of to_char's.
    spelled = (
        f"date_trunc('second', (e.occurred_at AT TIME ZONE 'UTC') + (%s::interval[])[{period}])::text"
        f" || ' ' || (%s::text[])[{period}]"
    )
    whens, params = [], []
    for name in zone_names:
        periods = zone_periods(ZoneInfo(name), start=start, end=end)
        starts = [p.starts_at for p in periods]
        whens.append(f"WHEN %s THEN {spelled}")
        params += [name, [p.utc_offset for p in periods], starts, [p.abbreviation for p in periods], starts]
    return f"CASE e.time_zone {' '.join(whens)} END", params
