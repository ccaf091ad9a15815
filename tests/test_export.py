"""
export_activity_log: the right rows in the right order in both formats on both databases,
RFC 4180 CSV that is safe in a spreadsheet, exact JSONL, files that appear whole or not at
all (errors and a real Ctrl-C), a progress bar only on a terminal, and clear bad-argument
errors.
"""

import csv
import fcntl
import io
import json
import os
import pty
import resource
import signal
import struct
import subprocess
import termios
import time
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from activitylog import chain, export
from activitylog.models import AuthEvent, EventType, FailureReason, SessionEndReason
from activitylog.services import auth_event_record
from agencyhandy.lib.atomic_file import atomic_write
from clients.models import Agency, Client, ClientStatus
from tests.bulk import record_in_bulk
from tests.conftest import CHROME_UA, make_user
from tests.subprocesses import ROOT, manage, manage_command, manage_env

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
NASTY_AGENT = '=HYPERLINK("http://evil.test/?a,b","click")\r\nSecond line, ünïcödé 🚀 "quoted"'


@pytest.fixture
def history(acme, globex) -> list[AuthEvent]:
    """Events with awkward text, two at the same instant, a missing IP, in two agencies."""
    acme.client.name = "-Northwind, \"Traders\""
    acme.client.save()
    events = [
        auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN, ip="203.0.113.5",
                          user_agent=NASTY_AGENT, session_ref="a" * 64, occurred_at=T0),
        # Same instant as the next one: the export orders these by id.
        auth_event_record(user=globex.portal_user, event_type=EventType.LOGIN_FAILED, ip="2001:db8::1",
                          user_agent="@SUM(A1:A9)", reason=FailureReason.BAD_PASSWORD,
                          occurred_at=T0 + timedelta(minutes=5)),
        auth_event_record(user=acme.portal_member, event_type=EventType.LOGIN, ip=None,
                          user_agent=CHROME_UA, session_ref="b" * 64, occurred_at=T0 + timedelta(minutes=5)),
        auth_event_record(user=acme.portal_user, event_type=EventType.LOGOUT, ip="203.0.113.5",
                          user_agent="\tTabbed+agent", session_ref="a" * 64,
                          occurred_at=T0 + timedelta(days=1)),
        # Recorded last but earlier in time (like a session expiry recorded late).
        auth_event_record(user=acme.portal_member, event_type=EventType.SESSION_EXPIRED,
                          session_ref="b" * 64, occurred_at=T0 + timedelta(hours=3)),
    ]
    return events


def expected_records(events=None) -> list[dict]:
    """What an export must contain, built independently from the ORM."""
    events = events if events is not None else AuthEvent.objects.all()
    return [
        {
            "event_id": e.pk, "occurred_at": e.occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "event_type": e.event_type, "agency": e.agency.slug, "client_id": e.client_id,
            "client_name": e.client.name, "user_email": e.email, "ip": e.ip, "user_agent": e.user_agent,
            "browser": e.browser, "os": e.os, "session_ref": e.session_ref, "reason": e.reason, "hash": e.hash,
            "occurred_at_local": e.occurred_at.astimezone(e.agency.tzinfo).strftime("%Y-%m-%d %H:%M:%S %Z"),
            "time_zone": e.agency.time_zone, "reason_text": e.get_reason_display(),
        }
        for e in events.select_related("agency", "client").order_by("occurred_at", "id")
    ]


def run_export(*args) -> str:
    out = StringIO()
    call_command("export_activity_log", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def parse_csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def as_csv_strings(record: dict) -> dict:
    """An exact record as the CSV shows it: every value a string, no IP empty, formulas quoted."""
    row = {k: "" if v is None else str(v) for k, v in record.items()}
    for column in export.NEUTRALISED_COLUMNS:
        if row[column][:1] in ("=", "+", "-", "@", "\t", "\r"):
            row[column] = "'" + row[column]
    return row


def test_jsonl_holds_every_event_exactly_oldest_first(history):
    lines = run_export("--format", "jsonl").splitlines()
    assert [json.loads(line) for line in lines] == expected_records()
    assert [json.loads(line)["event_id"] for line in lines] == [
        history[0].pk, history[1].pk, history[2].pk, history[4].pk, history[3].pk
    ]
    assert list(json.loads(lines[0])) == list(export.COLUMNS)


def test_csv_has_the_columns_in_order_and_the_same_rows_as_jsonl(history):
    text = run_export()
    rows = parse_csv(text)

    assert text.split("\r\n", 1)[0] == ",".join(export.COLUMNS)
    assert rows == [as_csv_strings(r) for r in expected_records()]
    assert len(rows) == 5


def test_csv_quoting_follows_rfc_4180(history):
    text = run_export()
    # A field with a quote, comma or line break is quoted, with inner quotes doubled; the
    # line break inside the field survives, and records end with CRLF.
    assert '"\'=HYPERLINK(""http://evil.test/?a,b"",""click"")\r\nSecond line, ünïcödé 🚀 ""quoted"""' in text
    assert '"\'-Northwind, ""Traders"""' in text
    assert text.endswith("\r\n")
    assert text.count("\r\n") == 6 + 1  # header, five rows, one line break inside a field


def test_csv_neutralises_formulas_only_in_free_text_and_jsonl_keeps_them(history):
    rows = {int(r["event_id"]): r for r in parse_csv(run_export())}
    records = {r["event_id"]: r for r in map(json.loads, run_export("--format", "jsonl").splitlines())}

    assert rows[history[0].pk]["user_agent"].startswith("'=HYPERLINK(")
    assert rows[history[1].pk]["user_agent"] == "'@SUM(A1:A9)"
    assert rows[history[3].pk]["user_agent"] == "'\tTabbed+agent"
    assert rows[history[0].pk]["client_name"] == "'-Northwind, \"Traders\""
    assert records[history[0].pk]["user_agent"] == NASTY_AGENT
    assert records[history[1].pk]["user_agent"] == "@SUM(A1:A9)"
    assert records[history[0].pk]["client_name"] == "-Northwind, \"Traders\""
    # Not free text: a negative-looking value cannot occur, and nothing else is touched.
    assert rows[history[2].pk]["ip"] == "" and records[history[2].pk]["ip"] is None


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t", "\r"])
@pytest.mark.parametrize("column", export.NEUTRALISED_COLUMNS)
def test_every_free_text_column_is_neutralised_for_every_formula_prefix(column, prefix):
    row = [1, T0, "login", "acme", 2, "Client", "a@b.test", None, "UA", "Chrome", "Linux", "", "", "f" * 64,
           "2026-03-01 07:00:00 EST", "America/New_York", ""]
    row[export.COLUMNS.index(column)] = prefix + "cmd|' /C calc'!A0"
    cells = export.csv_cells(tuple(row))
    assert cells[export.COLUMNS.index(column)] == "'" + prefix + "cmd|' /C calc'!A0"
    assert sum(str(c).startswith("'") for c in cells) == 1


def test_filters_narrow_by_agency_client_time_and_type(history, acme, globex):
    def ids(*args):
        return [json.loads(line)["event_id"] for line in run_export("--format", "jsonl", *args).splitlines()]

    assert ids("--agency", "globex") == [history[1].pk]
    assert ids("--agency", "globex", "--agency", "acme") == ids()
    assert ids("--client", str(acme.client.pk)) == [history[0].pk, history[2].pk, history[4].pk, history[3].pk]
    assert ids("--agency", "globex", "--client", str(acme.client.pk)) == []
    assert ids("--type", "logout,session_expired") == [history[4].pk, history[3].pk]
    # --since is inclusive, --until exclusive; a bare date is midnight UTC.
    assert ids("--since", "2026-03-01T12:05:00.123456", "--until", "2026-03-02") == [
        history[1].pk, history[2].pk, history[4].pk
    ]
    assert ids("--since", "2026-03-02") == [history[3].pk]
    # An offset is honoured: 13:05 in Berlin (UTC+1 in March) is 12:05 UTC.
    assert ids("--until", "2026-03-01T13:05:00.123456+01:00") == [history[0].pk]
    assert ids("--since", "2026-03-01T12:05:00.123456Z", "--type", "login") == [history[2].pk]


def test_the_keyset_walk_crosses_batches_without_skipping_or_repeating(acme, monkeypatch):
    monkeypatch.setattr(export, "KEYSET_BATCH", 3)
    # Groups of four events at one instant straddle every batch boundary.
    record_in_bulk(acme.portal_user, 14, start=T0, step=timedelta(0))
    record_in_bulk(acme.portal_member, 14, start=T0 - timedelta(seconds=1), step=timedelta(milliseconds=250))

    events = AuthEvent.objects.order_by("occurred_at", "id").values_list(*export._FIELDS)
    rows = export._completed(export._rows_by_keyset(events))
    records = [json.loads(line) for line in "".join(export.jsonl_chunks(rows)).splitlines()]

    assert records == expected_records()
    assert len(records) == 28


def test_the_keyset_walk_leaves_out_rows_recorded_after_it_started(acme):
    # (COPY on PostgreSQL is one statement, so one snapshot, by itself.)
    record_in_bulk(acme.portal_user, 3, start=T0)
    rows = export._rows_by_keyset(AuthEvent.objects.order_by("occurred_at", "id").values_list(*export._FIELDS))
    first = next(rows)
    auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN, occurred_at=T0 + timedelta(days=9))
    assert [first[0], *(r[0] for r in rows)] == [r["event_id"] for r in expected_records()][:3]


def _agency_with_user(slug: str, tz: str, client_name: str):
    agency = Agency.objects.create(name=slug.title(), slug=slug, time_zone=tz)
    client = Client.objects.create(agency=agency, name=client_name, email=f"hello@{slug}.test",
                                   company_name=client_name, status=ClientStatus.ACTIVE)
    return make_user(f"client@{slug}.test", client=client)


# Awkward user agents: empty, a lone LF (quoted but no comma), COPY's end-of-data marker, a
# leading space, every formula prefix, text that only looks like a formula further in.
AWKWARD_AGENTS = ["", "line\nbreak", "\\.", " =not at the start", "+1", "-2", "@3", "\t4", "\r5", "a=b", 'say "hi"']


@pytest.fixture
def zones_history(history, acme) -> list[AuthEvent]:
    """Events across a DST change, in a half-hour zone and a mixed-case abbreviation, with every reason."""
    kolkata = _agency_with_user("kolkata", "Asia/Kolkata", "Ünïcödé, \"Kolkata\" Ltd")
    guam = _agency_with_user("guam", "Pacific/Guam", "=Guam")
    fall_back = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT; an hour later 01:30 EST
    events = [
        auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN, occurred_at=fall_back),
        auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN, occurred_at=fall_back + timedelta(hours=1)),
        # Either side of the change itself, at 06:00:00 UTC.
        auth_event_record(user=acme.portal_member, event_type=EventType.LOGIN,
                          occurred_at=datetime(2026, 11, 1, 5, 59, 59, 999999, tzinfo=UTC)),
        auth_event_record(user=acme.portal_member, event_type=EventType.LOGIN,
                          occurred_at=datetime(2026, 11, 1, 6, 0, tzinfo=UTC)),
        auth_event_record(user=kolkata, event_type=EventType.LOGIN, occurred_at=T0, ip="2001:db8::7"),
        auth_event_record(user=guam, event_type=EventType.LOGIN, occurred_at=T0),
    ]
    for n, code in enumerate(FailureReason.values):
        events.append(auth_event_record(user=kolkata, event_type=EventType.LOGIN_FAILED, reason=code,
                                        occurred_at=T0 + timedelta(minutes=n), user_agent=AWKWARD_AGENTS[n]))
    for n, code in enumerate(SessionEndReason.values):
        events.append(auth_event_record(user=guam, event_type=EventType.SESSION_EXPIRED, reason=code,
                                        session_ref=f"{n:064x}", occurred_at=T0 + timedelta(minutes=n),
                                        user_agent=AWKWARD_AGENTS[-n - 1]))
    for n, agent in enumerate(AWKWARD_AGENTS):
        events.append(auth_event_record(user=acme.portal_member, event_type=EventType.LOGIN_FAILED,
                                        reason=FailureReason.BAD_PASSWORD, user_agent=agent,
                                        occurred_at=T0 + timedelta(days=2, seconds=n)))
    return events


def python_csv(events, *, bom: bool = False) -> bytes:
    """The CSV as the Python formatter makes it (SQLite's path), from the keyset walk."""
    rows = export._completed(export._rows_by_keyset(events.order_by("occurred_at", "id").values_list(*export._FIELDS)))
    return "".join(export.csv_chunks(rows, bom=bom)).encode()


def test_postgresql_formats_byte_for_byte_the_csv_that_python_formats(zones_history, acme, monkeypatch):
    """PostgreSQL's COPY CSV and Python's csv module, fed the same awkward data, give the same file."""
    if connection.vendor != "postgresql":
        pytest.skip("the server formats the CSV on PostgreSQL only")
    monkeypatch.setattr(export, "KEYSET_BATCH", 2)
    monkeypatch.setattr(export, "CHUNK_CHARS", 300)  # many chunks, on both paths
    record_in_bulk(acme.portal_member, 7, start=T0 + timedelta(minutes=5), step=timedelta(0), user_agent=NASTY_AGENT)
    events = AuthEvent.objects.all()

    for bom in (False, True):
        counted = []
        by_copy = b"".join(export.export_chunks(events, bom=bom, progress=counted.append))
        assert by_copy == python_csv(events, bom=bom)
        assert sum(counted) == events.count() == 37 and len(counted) > 10
    # Each selection of the command too, whatever it narrows by.
    for narrowed in (events.filter(agency__slug="kolkata"), events.filter(event_type="session_expired"),
                     events.filter(occurred_at__gte=datetime(2026, 11, 1, 6, tzinfo=UTC))):
        assert b"".join(export.export_chunks(narrowed)) == python_csv(narrowed)


def test_postgresql_copy_gives_the_same_jsonl_as_the_keyset_walk(zones_history, acme, monkeypatch):
    """JSONL is formatted in Python on both databases: the typed COPY rows load as the ORM's do."""
    if connection.vendor != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    monkeypatch.setattr(export, "KEYSET_BATCH", 2)
    events = AuthEvent.objects.order_by("occurred_at", "id").values_list(*export._FIELDS)
    by_copy = "".join(export.jsonl_chunks(export._completed(export._rows_by_copy(events))))
    by_keyset = "".join(export.jsonl_chunks(export._completed(export._rows_by_keyset(events))))
    assert by_copy == by_keyset
    assert [json.loads(line) for line in run_export("--format", "jsonl").splitlines()] == expected_records()


def test_local_times_carry_the_agencys_zone_and_its_abbreviation_of_that_moment(zones_history):
    rows = {int(r["event_id"]): r for r in parse_csv(run_export())}
    records = {r["event_id"]: r for r in map(json.loads, run_export("--format", "jsonl").splitlines())}
    local = {e: (rows[e.pk]["occurred_at_local"], rows[e.pk]["time_zone"]) for e in zones_history}

    # The repeated hour of the fall-back in New York: the same wall time, told apart.
    assert local[zones_history[0]] == ("2026-11-01 01:30:00 EDT", "America/New_York")
    assert local[zones_history[1]] == ("2026-11-01 01:30:00 EST", "America/New_York")
    assert local[zones_history[2]] == ("2026-11-01 01:59:59 EDT", "America/New_York")
    assert local[zones_history[3]] == ("2026-11-01 01:00:00 EST", "America/New_York")
    # Half an hour off UTC; an abbreviation that is not all capitals.
    assert local[zones_history[4]] == ("2026-03-01 17:30:00 IST", "Asia/Kolkata")
    assert local[zones_history[5]] == ("2026-03-01 22:00:00 ChST", "Pacific/Guam")
    assert local[zones_history[4]][0] == records[zones_history[4].pk]["occurred_at_local"]
    # UTC stays as it was, with its microseconds.
    assert rows[zones_history[2].pk]["occurred_at"] == "2026-11-01T05:59:59.999999Z"


def test_reasons_are_readable_and_keep_their_code(zones_history):
    rows = [r for r in parse_csv(run_export()) if r["reason"]]
    records = [r for r in map(json.loads, run_export("--format", "jsonl").splitlines()) if r["reason"]]
    shown = {(r["reason"], r["reason_text"]) for r in rows}

    assert ("bad_password", "Wrong password") in shown
    assert ("idle_timeout", "Idle timeout") in shown
    assert shown == {(code, str(label)) for code, label in FailureReason.choices + SessionEndReason.choices}
    assert {(r["reason"], r["reason_text"]) for r in records} == shown
    no_reason = parse_csv(run_export("--type", "login"))
    assert no_reason and all(r["reason"] == r["reason_text"] == "" for r in no_reason)


OLD_COLUMNS = [
    "event_id", "occurred_at", "event_type", "agency", "client_id", "client_name", "user_email", "ip",
    "user_agent", "browser", "os", "session_ref", "reason", "hash",
]


def test_the_columns_of_earlier_versions_keep_their_places_and_new_ones_come_after(history):
    header = run_export().split("\r\n", 1)[0].split(",")
    assert header[:len(OLD_COLUMNS)] == OLD_COLUMNS
    assert header[len(OLD_COLUMNS):] == ["occurred_at_local", "time_zone", "reason_text"]
    assert list(json.loads(run_export("--format", "jsonl").splitlines()[0])) == header


def test_rows_come_oldest_first_and_by_id_within_an_instant(history):
    """The documented order: occurred_at, then event_id (a late-recorded expiry sorts by its moment)."""
    rows = [(r["occurred_at"], int(r["event_id"])) for r in parse_csv(run_export())]
    assert rows == sorted(rows)
    assert [event_id for _, event_id in rows] == [history[i].pk for i in (0, 1, 2, 4, 3)]
    # Two events at one instant, the lower id first.
    assert rows[1][0] == rows[2][0] and rows[1][1] < rows[2][1]


def test_excel_csv_starts_with_a_byte_order_mark_and_is_otherwise_the_same(history, tmp_path):
    plain, excel = tmp_path / "plain.csv", tmp_path / "excel.csv"
    call_command("export_activity_log", "--output", str(plain), stdout=StringIO(), stderr=StringIO())
    call_command("export_activity_log", "--excel", "--output", str(excel), stdout=StringIO(), stderr=StringIO())

    assert not plain.read_bytes().startswith(b"\xef\xbb\xbf")
    assert excel.read_bytes() == b"\xef\xbb\xbf" + plain.read_bytes()
    # A reader that knows the mark (Excel, Python's utf-8-sig) sees the same table.
    assert parse_csv(excel.read_bytes().decode("utf-8-sig")) == parse_csv(plain.read_bytes().decode("utf-8"))


def test_an_empty_selection_is_a_header_only_csv_and_an_empty_jsonl(history):
    assert run_export("--agency", "globex", "--type", "logout") == ",".join(export.COLUMNS) + "\r\n"
    assert run_export("--format", "jsonl", "--since", "2030-01-01") == ""


def test_a_file_appears_complete_private_and_without_leftovers(history, tmp_path):
    target = tmp_path / "out.csv"
    err = StringIO()
    call_command("export_activity_log", "--output", str(target), stdout=StringIO(), stderr=err)

    assert parse_csv(target.read_bytes().decode("utf-8")) == [as_csv_strings(r) for r in expected_records()]
    assert os.stat(target).st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path) == ["out.csv"]
    assert "Wrote 5 events to" in err.getvalue()


def _file_size_limit(limit: int):
    def limit_file_size() -> None:
        # A file may grow to `limit` bytes; a write past it fails with EFBIG (SIGXFSZ ignored),
        # as a full disk fails a write with ENOSPC: a real failure halfway through.
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    return limit_file_size


@pytest.mark.django_db(transaction=True)  # the child process reads committed rows
def test_a_write_that_fails_halfway_leaves_no_file_keeps_an_older_one_and_says_so(acme, tmp_path):
    record_in_bulk(acme.portal_user, 5_000, start=T0, user_agent="Mozilla/5.0 " + "x" * 480)
    target = tmp_path / "out.csv"
    target.write_text("yesterday's export\n")
    child = subprocess.run(
        manage_command("export_activity_log", "--output", str(target)), cwd=ROOT, env=manage_env(),
        capture_output=True, text=True, timeout=120, preexec_fn=_file_size_limit(1_000_000),
    )

    assert child.returncode == 1, child.stderr
    assert child.stderr.strip() == f"CommandError: Could not write {target}: File too large. {target} was not written."
    assert target.read_text() == "yesterday's export\n"
    assert os.listdir(tmp_path) == ["out.csv"]


def test_atomic_write_removes_its_temporary_file_on_keyboard_interrupt(tmp_path):
    target = tmp_path / "anchor.json"
    with pytest.raises(KeyboardInterrupt), atomic_write(target) as file:
        file.write("half")
        assert len(os.listdir(tmp_path)) == 1
        raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _started_export(target, tmp_path) -> tuple[subprocess.Popen, int]:
    """
    Start a child export to `target` and stop it (SIGSTOP) once its temporary file holds
    over 1 MB, so that however busy the machine, it is still halfway when the test acts.
    The caller sends SIGCONT after acting. LARGE_EXPORT rows leave many megabytes to go:
    more than a child can write in the moment between the size check and the stop.
    """
    child = subprocess.Popen(
        manage_command("export_activity_log", "--output", str(target)),
        cwd=ROOT, env=manage_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # Ctrl-C as a terminal delivers it. A suite started in the background by a
        # non-interactive shell (`make test &`, nohup) hands its children SIGINT ignored,
        # and Python then never turns it into KeyboardInterrupt.
        preexec_fn=_default_sigint,
    )
    partial_size = 0
    deadline = time.monotonic() + 120
    while child.poll() is None and time.monotonic() < deadline:
        partials = list(tmp_path.glob(f".{target.name}.*.partial"))
        partial_size = partials[0].stat().st_size if partials else 0
        if partial_size >= 1_000_000:
            child.send_signal(signal.SIGSTOP)
            break
        time.sleep(0.005)
    return child, partial_size


LARGE_EXPORT = 40_000  # rows of about 600 bytes: 24 MB of CSV


@pytest.mark.django_db(transaction=True)  # the child process reads committed rows
def test_ctrl_c_halfway_through_a_large_export_leaves_no_file(acme, tmp_path):
    record_in_bulk(acme.portal_user, LARGE_EXPORT, start=T0, user_agent="Mozilla/5.0 " + "x" * 480)
    target = tmp_path / "out.csv"
    # Wait until the export is under way: its temporary file holds well over the header.
    child, partial_size = _started_export(target, tmp_path)
    child.send_signal(signal.SIGINT)
    child.send_signal(signal.SIGCONT)
    _, stderr = child.communicate(timeout=60)

    assert partial_size >= 1_000_000, "the export never got going"
    assert child.returncode == 130, stderr
    assert stderr.strip() == f"CommandError: Interrupted. {target} was not written."
    assert os.listdir(tmp_path) == []


@pytest.mark.django_db(transaction=True)
def test_a_database_failure_halfway_leaves_no_file_and_says_so(acme, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("needs a database server whose connection can be cut")
    record_in_bulk(acme.portal_user, LARGE_EXPORT, start=T0, user_agent="Mozilla/5.0 " + "x" * 480)
    target = tmp_path / "out.csv"
    child, partial_size = _started_export(target, tmp_path)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND backend_type = 'client backend'"
            " AND state = 'active' AND query LIKE 'COPY %%'"
        )
        # The child's export (and possibly the dying one of an earlier test).
        terminated = [ok for (ok,) in cursor.fetchall()]
    child.send_signal(signal.SIGCONT)
    _, stderr = child.communicate(timeout=60)

    assert partial_size >= 1_000_000 and terminated and all(terminated)
    assert child.returncode == 1, stderr
    assert "Traceback" not in stderr
    # One clear line (beside the connection pool's own warning), no traceback.
    [line] = [text for text in stderr.splitlines() if text.startswith("CommandError:")]
    assert line.startswith(f"CommandError: The database failed during the export; {target} was not written: ")
    # Which of the two the client sees depends on when the termination reaches it.
    assert "terminating connection due to administrator command" in line or "server closed the connection" in line
    assert os.listdir(tmp_path) == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--agency", "nope"], "No agency with slug 'nope'."),
        (["--client", "987654"], "No client with id 987654."),
        (["--since", "last tuesday"], "--since 'last tuesday' is not an ISO 8601 date or date-time"),
        (["--until", "2026-02-30"], "--until '2026-02-30' is not an ISO 8601 date or date-time"),
        (["--since", "2026-03-02", "--until", "2026-03-01T23:59:59"], "--since 2026-03-02 is after --until"),
        (["--type", "login,teleport"], "Unknown event type 'teleport'"),
        (["--output", "/no/such/dir/out.csv"], "The directory /no/such/dir does not exist."),
        (["--format", "jsonl", "--excel"], "--excel is for --format csv only"),
    ],
)
def test_bad_arguments_exit_2_with_one_clear_line(acme, args, message):
    result = manage("export_activity_log", *args)
    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert message in line
    assert "Traceback" not in result.stderr


@pytest.mark.django_db(transaction=True)
def test_a_progress_bar_shows_on_a_terminal_only(acme, tmp_path):
    record_in_bulk(acme.portal_user, 50, start=T0)
    target = tmp_path / "out.csv"

    quiet = manage("export_activity_log", "--output", str(target))
    assert quiet.returncode == 0
    assert quiet.stderr == f"Wrote 50 events to {target}.\n"

    controller, terminal = pty.openpty()
    # A real terminal has a size; a new pseudo-terminal is 0 columns wide.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        child = subprocess.run(
            manage_command("export_activity_log", "--output", str(target)), cwd=ROOT, env=manage_env(),
            stdout=subprocess.PIPE, stderr=terminal, timeout=60,
        )
        os.close(terminal)
        shown = b""
        while True:
            try:
                data = os.read(controller, 65536)
            except OSError:  # the terminal is closed and drained
                break
            if not data:
                break
            shown += data
    finally:
        os.close(controller)
    assert child.returncode == 0
    assert b"100%" in shown and b"events/s" in shown
    assert child.stdout == b""


def test_the_default_output_is_stdout(history):
    assert parse_csv(run_export())[0]["event_id"] == str(history[0].pk)


def test_the_chain_fields_are_exported_untouched(history):
    [record] = [json.loads(line) for line in run_export("--format", "jsonl", "--type", "login_failed").splitlines()]
    event = history[1]
    assert record["hash"] == event.hash == chain.event_hash(
        {f: getattr(event, f) for f in ("id", "chain_version", *chain.HASHED_FIELDS)}
    )


@pytest.mark.django_db(transaction=True)
def test_a_reader_that_goes_away_ends_the_export_quietly(acme):
    """`export_activity_log | head -1`: no traceback when the pipe closes."""
    record_in_bulk(acme.portal_user, 3000, start=T0, user_agent="Mozilla/5.0 " + "x" * 200)
    child = subprocess.Popen(manage_command("export_activity_log"), cwd=ROOT, env=manage_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout.readline().startswith(b"event_id,")
    child.stdout.close()
    stderr = child.stderr.read()
    child.wait(timeout=60)
    assert child.returncode == 1
    assert stderr == b""
