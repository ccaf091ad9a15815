"""
Management commands answer bad input with one clear line and exit 2, never a traceback,
and verify_activity_log exits 1 for tampering and nothing else (a cron job raises the
alarm on it). A property-based fuzz of every command's arguments runs in-process; real
command lines prove the exit codes and the single line on stderr.
"""

import json
import subprocess
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from hypothesis import given
from hypothesis import strategies as st

from activitylog.models import EventType
from activitylog.services import auth_event_record
from demo.management.commands.simulate_portal_activity import server_url_is_valid
from tests.subprocesses import manage, manage_command, manage_env

# Any text at all: NUL, lone surrogates, line breaks, other scripts.
junk = st.text(max_size=40)
numbers = st.integers(min_value=-(10**25), max_value=10**25).map(str)
ids = st.one_of(numbers, junk, st.sampled_from(["1", "0", "-1", "9223372036854775807", "9223372036854775808"]))
floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(str), numbers, junk)
moments = st.one_of(
    junk,
    st.dates().map(str),
    st.builds(
        lambda moment, hours, minutes: f"{moment.isoformat()}{'+' if hours >= 0 else '-'}{abs(hours):02d}:{minutes:02d}",
        st.datetimes(), st.integers(-23, 23), st.integers(0, 59),
    ),
    st.sampled_from(["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "9999-12-31", "2026-02-30"]),
)
event_types = st.lists(st.one_of(st.sampled_from(EventType.values), junk), max_size=3).map(",".join)
# A file name in the test's own directory: no "/", so nothing outside it is ever written.
file_names = st.text(st.characters(exclude_characters="/"), min_size=1, max_size=300)
# Django's own options, on every command. (--traceback asks for tracebacks; --help and
# --version print and exit, as they should.)
BASE_OPTIONS = {
    "--verbosity": st.one_of(st.sampled_from("0123"), junk),
    "--no-color": None,
    "--force-color": None,
    "--skip-checks": None,
}


def _argv(data, options: dict) -> list[str]:
    """Some of `options`, each with a drawn value, always as --name=value (never read as an option)."""
    chosen = data.draw(st.lists(st.sampled_from(sorted(options)), max_size=len(options), unique=True))
    argv = []
    for name in chosen:
        strategy = options[name]
        argv.append(name if strategy is None else f"{name}={data.draw(strategy)}")
    # Stray words: unknown arguments.
    argv += data.draw(st.lists(junk.filter(lambda word: not word.startswith("-")), max_size=1))
    return argv


def _run(command: str, argv: list[str]) -> CommandError | None:
    try:
        call_command(command, *argv, stdout=StringIO(), stderr=StringIO())
    except CommandError as exc:
        assert len(str(exc).splitlines()) == 1 and str(exc).strip(), str(exc)
        return exc
    return None


@pytest.fixture
def history(acme, globex):
    for people in (acme, globex):
        auth_event_record(user=people.portal_user, event_type=EventType.LOGIN, ip="203.0.113.5")
        auth_event_record(user=people.portal_user, event_type=EventType.LOGIN_FAILED, reason="bad_password")
    return acme


@pytest.fixture
def anchors(tmp_path, history) -> list[str]:
    """A valid anchor, and files that are anchors in name only."""
    valid = tmp_path / "valid.json"
    call_command("verify_activity_log", "--write-anchor", str(valid), stdout=StringIO())
    hostile = {
        "deep.json": "[" * 100_000 + "]" * 100_000,
        "deep-object.json": '{"a":' * 50_000 + "1" + "}" * 50_000,
        "long-number.json": "1" * 5_000,
        "deep-version.json": json.dumps({"format": "agencyhandy-activitylog-anchor", "version": 1}).replace(
            '"version": 1', '"version": ' + "[" * 900 + "]" * 900),
        "wrong-types.json": json.dumps({"format": "agencyhandy-activitylog-anchor", "version": 1,
                                        "written_at": [[1]], "chains": {"x": [], "1": {"events": True}}}),
        "binary.json": "\udcff\x00\x01",
        "empty.json": "",
    }
    for name, content in hostile.items():
        (tmp_path / name).write_bytes(content.encode("utf-8", "surrogateescape"))
    return [str(valid), *(str(tmp_path / name) for name in hostile), str(tmp_path), "/no/such/anchor.json"]


@pytest.mark.parametrize(
    "argv",
    [
        ["--since=9999-12-31T23:59:59-01:00"],  # the year 10000 in UTC
        ["--until=0001-01-01T00:00:00+01:00"],  # the year 0 in UTC
        ["--client=99999999999999999999"],  # more than a bigint
        ["--agency=acme\x00"],
        ["--output={tmp}/" + "x" * 300],  # a name longer than the file system takes
    ],
)
def test_export_answers_the_known_bad_arguments_with_exit_2(history, tmp_path, argv):
    error = _run("export_activity_log", [arg.format(tmp=tmp_path) for arg in argv])
    assert error is not None and error.returncode == 2


@given(data=st.data())
def test_export_never_fails_with_a_traceback(data, history, tmp_path):
    paths = st.one_of(st.just("-"), file_names.map(lambda name: str(tmp_path / name)),
                      st.sampled_from([str(tmp_path), "/no/such/dir/out.csv"]))
    argv = _argv(data, {
        **BASE_OPTIONS,
        "--format": st.one_of(st.sampled_from(["csv", "jsonl"]), junk),
        "--agency": st.one_of(st.sampled_from(["acme", "globex"]), junk),
        "--client": ids, "--since": moments, "--until": moments, "--type": event_types, "--output": paths,
        "--excel": None,
    })
    error = _run("export_activity_log", argv)
    assert error is None or error.returncode == 2, (argv, error)


@given(data=st.data())
def test_verify_exits_1_for_tampering_only_whatever_its_arguments(data, anchors, tmp_path):
    argv = _argv(data, {
        **BASE_OPTIONS,
        "--client": ids,
        # Not 2 to 16: worker processes read committed rows, and test_chain.py covers them.
        "--workers": st.one_of(st.sampled_from(["1", "0", "17", "-1", "99999999999999999999"]),
                               junk.filter(lambda word: not word.strip().isdigit())),
        "--anchor": st.one_of(st.sampled_from(anchors), file_names.map(lambda name: str(tmp_path / name))),
        "--since-anchor": st.one_of(st.sampled_from(anchors), file_names.map(lambda name: str(tmp_path / name))),
        "--write-anchor": file_names.map(lambda name: str(tmp_path / "out" / name)),
    })
    (tmp_path / "out").mkdir(exist_ok=True)
    error = _run("verify_activity_log", argv)
    # The log is untouched and every anchor is either valid or not an anchor at all.
    assert error is None or error.returncode == 2, (argv, error)


@given(data=st.data())
def test_record_session_expiries_and_seed_demo_never_fail_with_a_traceback(data, history):
    argv = _argv(data, BASE_OPTIONS)
    error = _run("record_session_expiries", argv)
    assert error is None or error.returncode == 2, (argv, error)
    argv = _argv(data, {**BASE_OPTIONS, "--password": st.one_of(junk, st.just("demo-password"))})
    error = _run("seed_demo", argv)
    assert error is None or error.returncode == 2, (argv, error)


@given(data=st.data())
def test_simulate_never_fails_with_a_traceback(data, history):
    server = data.draw(st.one_of(
        junk,
        st.builds("{}://{}{}".format, st.sampled_from(["http", "https", "ftp", ""]),
                  st.one_of(st.sampled_from(["127.0.0.1", "[::1", "[::1]", "::1", "", "@", "ü.test"]), junk),
                  st.one_of(st.sampled_from(["", ":", ":1", ":99999", ":abc", "/path", "?q", "#f"]), junk)),
    ))
    # A server that passes the check is swapped for a port where nothing listens: the fuzz
    # must never sign anyone in on a real server.
    server = "http://127.0.0.1:1" if server_url_is_valid(server) else server
    argv = [f"--server={server}", *_argv(data, {
        **BASE_OPTIONS,
        "--agency": st.one_of(st.sampled_from(["acme", "globex", "nope"]), junk),
        "--rate": floats, "--duration": floats, "--password": junk, "--seed": numbers,
    })]
    error = _run("simulate_portal_activity", argv)
    assert error is not None, "nothing listens on port 1"
    # 2: bad arguments; 1: the (unreachable) server could not be reached.
    assert error.returncode == 2 or (error.returncode == 1 and "Could not reach" in str(error)), (argv, error)


# Real command lines: exit code 2, one line on stderr, no traceback.

@pytest.mark.django_db(transaction=True)  # the child processes read committed rows
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["export_activity_log", "--since", "9999-12-31T23:59:59-01:00"],
         "--since '9999-12-31T23:59:59-01:00' is out of range once converted to UTC."),
        (["export_activity_log", "--client", "99999999999999999999"],
         "argument --client: invalid id '99999999999999999999': ids run from 1 to 9223372036854775807"),
        (["verify_activity_log", "--anchor", "{deep}"], "Anchor file {deep} is not an anchor (nested too deeply)."),
        (["verify_activity_log", "--workers", "99"], "argument --workers: invalid choice: 99"),
        (["verify_activity_log", "--since-anchor", "{deep}"], "Anchor file {deep} is not an anchor (nested too deeply)."),
        (["verify_activity_log", "--since-anchor", "{deep}", "--anchor", "{deep}"],
         "argument --anchor: not allowed with argument --since-anchor (see --help)"),
        (["record_session_expiries", "--since", "yesterday"], "unrecognized arguments: --since yesterday"),
        (["seed_demo", "--password", "short"], "--password must be at least 8 characters."),
        (["simulate_portal_activity", "--server", "http://[::1"], "--server must look like http://127.0.0.1:8000"),
        (["verify_activity_log", "--settings", "agencyhandy.nope"], "There is no settings module 'agencyhandy.nope'."),
    ],
)
def test_bad_arguments_exit_2_with_one_line_on_stderr(acme, tmp_path, argv, message):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    argv = [arg.format(deep=deep) for arg in argv]

    result = manage(*argv)

    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("CommandError: ") and message.format(deep=deep) in line
    assert result.stdout == ""


def test_verify_on_a_database_it_cannot_read_is_not_the_tampering_code(tmp_path):
    """An empty, unmigrated database: the check cannot run, which is not tampering."""
    env = {**manage_env(), "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}"}
    result = subprocess.run(manage_command("verify_activity_log"), env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 3, result.stderr
    assert result.stderr.splitlines() == ["CommandError: The database failed: no such table: activitylog_authevent"]


@pytest.mark.parametrize("value", ["acme\x00", "\udcffacme"])  # a NUL; a byte of the command line that was not UTF-8
def test_a_text_argument_that_cannot_be_stored_is_a_usage_error(acme, value):
    error = _run("export_activity_log", [f"--agency={value}"])
    assert error.returncode == 2 and "NUL character or bytes that are not UTF-8" in str(error)


def test_a_path_with_a_line_break_is_still_one_line(tmp_path):
    error = _run("export_activity_log", [f"--output={tmp_path}/no\nsuch/out.csv"])
    assert error.returncode == 2 and "no\\nsuch" in str(error)
