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
import signal
import struct
import subprocess
import termios
import time
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from activitylog import chain, export
from activitylog.models import AuthEvent, EventType, FailureReason
from activitylog.services import auth_event_record
from agencyhandy.lib.atomic_file import atomic_write
from tests.bulk import record_in_bulk
from tests.conftest import CHROME_UA
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
    row = [1, T0, "login", "acme", 2, "Client", "a@b.test", None, "UA", "Chrome", "Linux", "", "", "f" * 64]
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
    records = [json.loads(line) for line in "".join(export.jsonl_chunks(export._rows_by_keyset(events))).splitlines()]

    assert records == expected_records()
    assert len(records) == 28


def test_the_keyset_walk_leaves_out_rows_recorded_after_it_started(acme):
    # (COPY on PostgreSQL is one statement, so one snapshot, by itself.)
    record_in_bulk(acme.portal_user, 3, start=T0)
    rows = export._rows_by_keyset(AuthEvent.objects.order_by("occurred_at", "id").values_list(*export._FIELDS))
    first = next(rows)
    auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN, occurred_at=T0 + timedelta(days=9))
    assert [first[0], *(r[0] for r in rows)] == [r["event_id"] for r in expected_records()][:3]


def test_postgresql_copy_gives_byte_for_byte_the_same_files_as_the_keyset_walk(history, acme, monkeypatch):
    """The COPY path and the chunked path are one formatter fed by two readers; prove it on PG data."""
    if connection.vendor != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    monkeypatch.setattr(export, "KEYSET_BATCH", 2)
    record_in_bulk(acme.portal_member, 7, start=T0 + timedelta(minutes=5), step=timedelta(0), user_agent=NASTY_AGENT)
    events = AuthEvent.objects.all()

    for chunks in (export.csv_chunks, export.jsonl_chunks):
        by_copy = "".join(chunks(export._rows_by_copy(events.order_by("occurred_at", "id").values_list(*export._FIELDS))))
        by_keyset = "".join(chunks(export._rows_by_keyset(events.order_by("occurred_at", "id").values_list(*export._FIELDS))))
        assert by_copy == by_keyset
        assert by_copy.count("\n") >= 12
    assert [json.loads(line) for line in run_export("--format", "jsonl").splitlines()] == expected_records()


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


def test_an_error_halfway_leaves_no_file_and_keeps_an_older_one(history, tmp_path, monkeypatch):
    target = tmp_path / "out.csv"
    target.write_text("yesterday's export\n")
    real_cells, seen = export.csv_cells, []

    def failing_on_the_third_row(row):
        seen.append(row)
        if len(seen) == 3:
            raise OSError("No space left on device")
        return real_cells(row)

    monkeypatch.setattr(export, "csv_cells", failing_on_the_third_row)
    with pytest.raises(OSError, match="No space"):
        call_command("export_activity_log", "--output", str(target), stdout=StringIO(), stderr=StringIO())

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
