"""
Chain anchors catch what the chain alone cannot: events cut from the end of a chain, by
raw SQL with the append-only triggers dropped, as a database superuser could.
"""

import json
import os

import pytest

from activitylog.models import AuthEvent, EventType
from activitylog.services import auth_event_record
from tests.subprocesses import manage
from tests.test_chain import triggers_dropped, verify


def record(people, event_type=EventType.LOGIN, n=0) -> AuthEvent:
    return auth_event_record(user=people.portal_user, event_type=event_type, session_ref=f"{people.client.pk:08x}{n:056x}")


@pytest.fixture
def history(acme, globex) -> dict[str, list[AuthEvent]]:
    return {
        "acme": [record(acme, EventType.LOGIN, 1), record(acme, EventType.LOGOUT, 1), record(acme, EventType.LOGIN, 2)],
        "globex": [record(globex, EventType.LOGIN, 1)],
    }


@pytest.fixture
def anchor(history, tmp_path):
    path = tmp_path / "anchor.json"
    assert verify("--write-anchor", str(path))[0] == 0
    return path


def cut_from_the_end(*events: AuthEvent) -> None:
    with triggers_dropped() as cursor:
        for event in events:
            cursor.execute("DELETE FROM activitylog_authevent WHERE id = %s", [event.pk])


def test_an_anchor_records_every_clients_event_count_and_last_hash(history, anchor, acme, globex, tmp_path):
    document = json.loads(anchor.read_text())

    assert document["format"] == "agencyhandy-activitylog-anchor" and document["version"] == 1
    assert document["chains"] == {
        str(acme.client.pk): {"events": 3, "head_hash": history["acme"][-1].hash},
        str(globex.client.pk): {"events": 1, "head_hash": history["globex"][-1].hash},
    }
    assert document["written_at"].endswith("Z")
    assert os.listdir(tmp_path) == ["anchor.json"]  # written via a temporary file, renamed


def test_an_untouched_log_matches_its_anchor_and_may_grow(history, anchor, acme, globex):
    assert verify("--anchor", str(anchor))[0] == 0
    record(acme, EventType.LOGOUT, 2)
    record(globex, EventType.LOGOUT, 1)
    code, output = verify("--anchor", str(anchor))
    assert code == 0
    assert "All chains intact and consistent with the anchor of" in output


def test_events_cut_from_the_end_are_caught_by_the_anchor_but_not_by_the_chain(history, anchor, acme):
    cut_from_the_end(history["acme"][-1])

    assert verify()[0] == 0  # the shorter chain is still a consistent chain
    code, output = verify("--anchor", str(anchor))

    assert code == 1
    assert f"Client {acme.client.pk} ({acme.client.name}): has 2 events but had 3 at the anchor" in output
    assert "cut from the end" in output
    assert "Tampering detected in 1 of 2 client chains" in output


def test_a_whole_chain_cut_away_is_caught(history, anchor, globex):
    cut_from_the_end(*history["globex"])
    code, output = verify("--anchor", str(anchor))
    assert code == 1
    assert f"Client {globex.client.pk} ({globex.client.name}): has 0 events but had 1" in output


def test_a_cut_hidden_by_new_events_is_caught_by_the_anchored_hash(history, anchor, acme):
    # Cut the last event, then let real logins grow the chain past its anchored length.
    cut_from_the_end(history["acme"][-1])
    record(acme, EventType.LOGIN, 7)
    record(acme, EventType.LOGOUT, 7)

    assert verify()[0] == 0
    code, output = verify("--anchor", str(anchor))
    assert code == 1
    assert "event 3 of the chain no longer has the hash anchored at" in output


def test_a_check_limited_to_some_clients_checks_only_their_anchors(history, anchor, acme, globex):
    cut_from_the_end(history["globex"][-1])
    assert verify("--anchor", str(anchor), "--client", str(acme.client.pk))[0] == 0
    assert verify("--anchor", str(anchor), "--client", str(globex.client.pk))[0] == 1


def test_a_failed_check_writes_no_new_anchor(history, anchor, tmp_path):
    cut_from_the_end(history["acme"][-1])
    fresh = tmp_path / "next.json"
    code, output = verify("--anchor", str(anchor), "--write-anchor", str(fresh))
    assert code == 1
    assert not fresh.exists()
    assert "No anchor written" in output


def test_a_clean_check_against_the_last_anchor_rolls_it_forward(history, anchor, acme):
    record(acme, EventType.LOGOUT, 2)
    code, _ = verify("--anchor", str(anchor), "--write-anchor", str(anchor))
    assert code == 0
    assert json.loads(anchor.read_text())["chains"][str(acme.client.pk)]["events"] == 4


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("{not json", "is not JSON"),
        ('{"format": "something-else"}', "is not an activity log anchor"),
        ('{"format": "agencyhandy-activitylog-anchor", "version": 9, "chains": {}}', "has version 9"),
        ('{"format": "agencyhandy-activitylog-anchor", "version": 1, "chains": []}', "no \"chains\" object"),
        ('{"format": "agencyhandy-activitylog-anchor", "version": 1, "chains": {"1": {"events": 0, "head_hash": "x"}}}',
         "malformed entry for client '1'"),
        ('{"format": "agencyhandy-activitylog-anchor", "version": 1, "chains": {"a": {"events": 1, "head_hash": "'
         + "0" * 64 + '"}}}', "malformed entry for client 'a'"),
    ],
)
def test_a_missing_or_bad_anchor_file_is_a_clear_usage_error(history, tmp_path, content, message):
    path = tmp_path / "anchor.json"
    if content is not None:
        path.write_text(content)
    code, output = verify("--anchor", str(path))
    assert code == 2
    assert message in output


@pytest.mark.django_db(transaction=True)
def test_a_bad_anchor_file_exits_2_with_one_line_and_no_traceback(acme, tmp_path):
    path = tmp_path / "anchor.json"
    path.write_text("[]")
    result = manage("verify_activity_log", "--anchor", str(path))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"CommandError: {path} is not an activity log anchor (no \"format\": \"agencyhandy-activitylog-anchor\")."]


def test_an_anchor_cannot_be_written_where_no_file_can_go(history, tmp_path):
    code, output = verify("--write-anchor", str(tmp_path / "missing" / "anchor.json"))
    assert code == 2
    assert "does not exist" in output
