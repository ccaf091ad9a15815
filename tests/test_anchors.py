"""
Chain anchors catch what the chain alone cannot: events cut from the end of a chain, by
raw SQL with the append-only triggers dropped, as a database superuser could.
"""

import json
import os

import pytest

from activitylog.models import AuthEvent, EventType
from activitylog.services import auth_event_record
from clients.models import Client, ClientStatus
from tests.conftest import make_user
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


@pytest.mark.parametrize("check", ["--anchor", "--since-anchor"])
def test_a_cut_hidden_by_new_events_is_caught_by_the_anchored_hash(history, anchor, acme, check):
    # Cut the last event, then let real logins grow the chain past its anchored length.
    cut_from_the_end(history["acme"][-1])
    record(acme, EventType.LOGIN, 7)
    record(acme, EventType.LOGOUT, 7)

    assert verify()[0] == 0  # the chain itself is whole again: only the anchor knows
    code, output = verify(check, str(anchor))
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


# --since-anchor: only what is new since the anchor is read -------------------------------------


def test_a_check_since_the_anchor_reads_only_the_new_events(history, anchor, acme, globex):
    record(acme, EventType.LOGOUT, 2)
    record(globex, EventType.LOGOUT, 1)

    code, output = verify("--since-anchor", str(anchor))

    assert code == 0, output
    assert "Checked 2 events added since the anchor of" in output
    assert "in 2 client chains; took 4 events up to it on trust" in output
    assert "All chains intact and consistent with the anchor of" in output


def test_a_check_since_the_anchor_rolls_it_forward_to_what_a_full_check_writes(history, anchor, acme, tmp_path):
    record(acme, EventType.LOGOUT, 2)
    full = tmp_path / "full.json"
    assert verify("--write-anchor", str(full))[0] == 0

    code, output = verify("--since-anchor", str(anchor), "--write-anchor", str(anchor))

    assert code == 0, output
    assert json.loads(anchor.read_text())["chains"] == json.loads(full.read_text())["chains"]
    assert json.loads(anchor.read_text())["chains"][str(acme.client.pk)]["events"] == 4
    assert "Checked 0 events added since" in verify("--since-anchor", str(anchor))[1]


def test_a_client_new_since_the_anchor_is_checked_whole(history, anchor, acme, globex, tmp_path):
    client = Client.objects.create(agency=acme.agency, name="Newcomer Co", email="hello@newcomer.test",
                                   company_name="Newcomer Company", status=ClientStatus.ACTIVE)
    user = make_user("new@newcomer.test", client=client)
    first = auth_event_record(user=user, event_type=EventType.LOGIN)
    auth_event_record(user=user, event_type=EventType.LOGOUT)
    assert verify("--since-anchor", str(anchor))[0] == 0

    with triggers_dropped() as cursor:
        cursor.execute("UPDATE activitylog_authevent SET email = 'x@y.test' WHERE id = %s", [first.pk])
    code, output = verify("--since-anchor", str(anchor))
    assert code == 1
    assert f"Client {client.pk} (Newcomer Co): broken at event {first.pk} (seq 1)" in output


def test_tampering_after_the_anchor_is_caught_since_the_anchor(history, anchor, acme):
    new = [record(acme, EventType.LOGOUT, 2), record(acme, EventType.LOGIN, 3), record(acme, EventType.LOGOUT, 3)]
    with triggers_dropped() as cursor:
        cursor.execute("UPDATE activitylog_authevent SET ip = '192.0.2.66' WHERE id = %s", [new[0].pk])
    code, output = verify("--since-anchor", str(anchor))
    assert code == 1
    assert f"broken at event {new[0].pk} (seq 4) (after event {history['acme'][-1].pk})" in output
    assert "edited" in output

    with triggers_dropped() as cursor:
        cursor.execute("UPDATE activitylog_authevent SET ip = NULL WHERE id = %s", [new[0].pk])  # as recorded
        cursor.execute("DELETE FROM activitylog_authevent WHERE id = %s", [new[1].pk])
    code, output = verify("--since-anchor", str(anchor))
    assert code == 1
    assert f"event {new[2].pk} (seq 6) (after event {new[0].pk})" in output and "missing" in output


def test_a_cut_from_the_end_is_caught_since_the_anchor(history, anchor, acme):
    cut_from_the_end(history["acme"][-1])
    code, output = verify("--since-anchor", str(anchor))
    assert code == 1
    assert f"Client {acme.client.pk} ({acme.client.name}): has no event 3 but had 3 events at the anchor" in output


def test_an_edited_anchored_event_is_caught_since_the_anchor(history, anchor, acme):
    head = history["acme"][-1]
    with triggers_dropped() as cursor:
        cursor.execute("UPDATE activitylog_authevent SET ip = '192.0.2.66' WHERE id = %s", [head.pk])
    code, output = verify("--since-anchor", str(anchor))
    assert code == 1
    assert f"event {head.pk} (seq 3), the anchored event: its contents or id do not match its hash" in output


def test_a_row_deleted_before_the_anchor_is_caught_by_the_count(history, anchor, acme):
    with triggers_dropped() as cursor:
        cursor.execute("DELETE FROM activitylog_authevent WHERE id = %s", [history["acme"][0].pk])
    code, output = verify("--since-anchor", str(anchor))
    assert code == 1
    assert f"Client {acme.client.pk} ({acme.client.name}): has 2 events up to its anchored event 3" in output
    assert "were deleted or inserted" in output


def test_a_row_inserted_before_the_anchor_is_caught_by_the_count(history, anchor, acme):
    first = history["acme"][0]
    with triggers_dropped() as cursor:
        cursor.execute(
            "INSERT INTO activitylog_authevent (agency_id, client_id, user_id, email, event_type, occurred_at,"
            " ip, user_agent, browser, os, session_ref, reason, seq, prev_hash, hash, chain_version)"
            " SELECT agency_id, client_id, user_id, email, event_type, occurred_at, ip, user_agent, browser, os,"
            " '', reason, 0, prev_hash, hash, chain_version FROM activitylog_authevent WHERE id = %s",
            [first.pk],
        )
    code, output = verify("--since-anchor", str(anchor))
    assert code == 1
    assert "has 4 events up to its anchored event 3" in output


def test_an_edit_before_the_anchor_is_left_to_the_full_check(history, anchor, acme):
    """What a check since the anchor does not prove: older rows' contents. The full check does."""
    with triggers_dropped() as cursor:
        cursor.execute("UPDATE activitylog_authevent SET ip = '192.0.2.66' WHERE id = %s", [history["acme"][0].pk])
    assert verify("--since-anchor", str(anchor))[0] == 0
    code, output = verify("--anchor", str(anchor))
    assert code == 1 and f"broken at event {history['acme'][0].pk} (seq 1)" in output


def test_a_check_since_the_anchor_can_be_limited_to_some_clients(history, anchor, acme, globex):
    cut_from_the_end(history["globex"][-1])
    code, output = verify("--since-anchor", str(anchor), "--client", str(acme.client.pk))
    assert code == 0 and "in 1 client chains; took 3 events" in output
    assert verify("--since-anchor", str(anchor), "--client", str(globex.client.pk))[0] == 1


def test_a_failed_check_since_the_anchor_writes_no_new_anchor(history, anchor, tmp_path):
    cut_from_the_end(history["acme"][-1])
    code, output = verify("--since-anchor", str(anchor), "--write-anchor", str(anchor))
    assert code == 1 and "No anchor written" in output
    assert json.loads(anchor.read_text())["chains"][str(history["acme"][0].client_id)]["events"] == 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--anchor", "{anchor}", "--since-anchor", "{anchor}"], "not allowed with argument --anchor"),
        (["--since-anchor", "{anchor}", "--workers", "2"], "--workers is for a full check"),
        (["--since-anchor"], "expected one argument"),
    ],
)
def test_contradictory_anchor_options_are_a_clear_usage_error(history, anchor, argv, message):
    code, output = verify(*(arg.format(anchor=anchor) for arg in argv))
    assert code == 2
    assert message in output


@pytest.mark.parametrize("option", ["--anchor", "--since-anchor"])
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
def test_a_missing_or_bad_anchor_file_is_a_clear_usage_error(history, tmp_path, option, content, message):
    path = tmp_path / "anchor.json"
    if content is not None:
        path.write_text(content)
    code, output = verify(option, str(path))
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
