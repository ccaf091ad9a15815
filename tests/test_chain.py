"""
The hash chain catches real tampering: raw SQL with the append-only triggers dropped,
as a database superuser could do. verify_activity_log names the first broken link.
"""

import hashlib
import hmac
import json
import threading
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections
from django.db.migrations.executor import MigrationExecutor

from activitylog import chain, db_guards, verification
from activitylog.models import AuthEvent, EventType
from activitylog.services import auth_event_record


@contextmanager
def triggers_dropped():
    """What an attacker with database superuser rights does first."""
    with connection.cursor() as cursor:
        for statement in db_guards.remove_sql(connection.vendor):
            cursor.execute(statement)
        yield cursor
        for statement in db_guards.install_sql(connection.vendor):
            cursor.execute(statement)


def verify(*args) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("verify_activity_log", *args, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue() + str(exc)
    return 0, out.getvalue()


@pytest.fixture
def history(acme, globex) -> list[AuthEvent]:
    """Five events of Acme's client and two of Globex's."""
    acme_events = [
        auth_event_record(user=acme.portal_user, event_type=t, ip="203.0.113.5", session_ref=f"{i:064x}")
        for i, t in enumerate([EventType.LOGIN, EventType.LOGOUT, EventType.LOGIN, EventType.LOGOUT, EventType.LOGIN])
    ]
    auth_event_record(user=globex.portal_user, event_type=EventType.LOGIN, session_ref="f" * 64)
    auth_event_record(user=globex.portal_user, event_type=EventType.LOGOUT, session_ref="f" * 64)
    return acme_events


def test_an_untouched_log_verifies(history):
    code, output = verify()
    assert code == 0
    assert "Checked 7 events in 2 client chains" in output
    assert "All chains intact" in output


def test_each_event_links_to_the_one_before(history):
    assert history[0].prev_hash == chain.GENESIS
    for before, after in zip(history, history[1:]):
        assert after.prev_hash == before.hash
        assert after.seq == before.seq + 1


def test_an_edited_event_is_caught(history, acme):
    with triggers_dropped() as cursor:
        cursor.execute("UPDATE activitylog_authevent SET ip = '192.0.2.66' WHERE id = %s", [history[2].pk])

    code, output = verify()

    assert code == 1
    assert f"Client {acme.client.pk}" in output
    assert f"event {history[2].pk} (seq 3)" in output
    assert "edited" in output
    assert "Tampering detected in 1 of 2 client chains" in output


def test_a_deleted_event_is_caught(history):
    with triggers_dropped() as cursor:
        cursor.execute("DELETE FROM activitylog_authevent WHERE id = %s", [history[1].pk])

    code, output = verify()

    assert code == 1
    assert f"event {history[2].pk} (seq 3) (after event {history[0].pk})" in output
    assert "missing" in output


def test_an_inserted_event_is_caught(history, acme):
    last = history[-1]
    fake = {**{f: getattr(last, f) for f in ("agency_id", "client_id", "user_id", "email", "ip",
                                               "user_agent", "browser", "os", "reason")},
            "id": last.pk + 1, "chain_version": chain.CHAIN_VERSION,
            "seq": last.seq + 1, "prev_hash": last.hash, "event_type": EventType.LOGOUT,
            "session_ref": "e" * 64, "occurred_at": last.occurred_at + timedelta(minutes=5)}
    # The attacker computes a plain SHA-256; without the chain key it cannot be right.
    forged_hash = hashlib.sha256(chain.canonical_bytes(fake)).hexdigest()
    with triggers_dropped() as cursor:
        cursor.execute(
            "INSERT INTO activitylog_authevent (agency_id, client_id, user_id, email, event_type,"
            " occurred_at, ip, user_agent, browser, os, session_ref, reason, seq, prev_hash, hash)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [fake["agency_id"], fake["client_id"], fake["user_id"], fake["email"], fake["event_type"],
             fake["occurred_at"], fake["ip"], fake["user_agent"], fake["browser"], fake["os"],
             fake["session_ref"], fake["reason"], fake["seq"], fake["prev_hash"], forged_hash],
        )

    code, output = verify()

    assert code == 1
    assert f"(seq {last.seq + 1}) (after event {last.pk})" in output


def test_reordered_events_are_caught(history):
    first, second = history[1], history[2]
    with triggers_dropped() as cursor:
        cursor.execute("UPDATE activitylog_authevent SET seq = 1000 WHERE id = %s", [first.pk])
        cursor.execute("UPDATE activitylog_authevent SET seq = %s WHERE id = %s", [first.seq, second.pk])
        cursor.execute("UPDATE activitylog_authevent SET seq = %s WHERE id = %s", [second.seq, first.pk])

    code, output = verify()

    assert code == 1
    assert f"event {second.pk} (seq {first.seq})" in output


def test_a_rewritten_chain_with_recomputed_sha256_is_still_caught(history):
    """Recomputing every hash after an edit needs the HMAC key, which is not in the database."""
    rows = AuthEvent.objects.filter(client_id=history[0].client_id).order_by("seq")
    values = list(rows.values("id", "chain_version", *chain.HASHED_FIELDS))
    prev = chain.GENESIS
    with triggers_dropped() as cursor:
        for row in values:
            row["prev_hash"] = prev
            if row["id"] == history[0].pk:
                row["ip"] = "192.0.2.1"
            prev = hashlib.sha256(chain.canonical_bytes(row)).hexdigest()
            cursor.execute(
                "UPDATE activitylog_authevent SET ip = %s, prev_hash = %s, hash = %s WHERE id = %s",
                [row["ip"], row["prev_hash"], prev, row["id"]],
            )

    code, output = verify()

    assert code == 1
    assert f"event {history[0].pk} (seq 1)" in output


def test_verification_can_be_limited_to_one_client(history, acme, globex):
    with triggers_dropped() as cursor:
        cursor.execute("UPDATE activitylog_authevent SET email = 'x@y.test' WHERE id = %s", [history[0].pk])

    assert verify("--client", str(globex.client.pk))[0] == 0
    code, output = verify("--client", str(acme.client.pk))
    assert code == 1 and "Checked 5 events in 1 client chains" in output


def test_an_unknown_client_is_a_clear_command_line_error(history):
    code, output = verify("--client", "987654")
    assert code == 2
    assert "No client with id 987654" in output


@pytest.mark.django_db(transaction=True)
def test_racing_logins_of_one_client_never_fork_or_gap_the_chain(acme):
    """Eight threads, each with its own database connection, append to one chain at once."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks across connections are a PostgreSQL matter; SQLite serialises writers")
    threads_count, per_thread = 8, 10
    barrier = threading.Barrier(threads_count)
    failures: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN, session_ref=f"{n:032x}{i:032x}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(threads_count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert failures == []
    seqs = list(AuthEvent.objects.filter(client=acme.client).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, threads_count * per_thread + 1))
    assert verify()[0] == 0


def test_timestamps_are_spelled_as_strftime_would_for_every_kind_of_instant():
    """The hash input must never change: the fast spelling equals the original one."""
    from datetime import UTC, datetime, timedelta, timezone

    from activitylog.chain import format_timestamp

    berlin = timezone(timedelta(hours=1))
    for value in (
        datetime(2026, 11, 26, 10, 0, 0, 0, tzinfo=UTC),
        datetime(2026, 11, 26, 10, 0, 0, 7, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=berlin),
        datetime(999, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    ):
        assert format_timestamp(value) == value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def walked_rows() -> list[tuple]:
    rows = AuthEvent.objects.order_by("id").values_list(*verification.READ_COLUMNS)
    return [verification.walked_row(row) for row in rows]


def test_rows_are_checked_in_chain_order_whatever_order_they_are_read_in(history):
    import random

    rows = walked_rows()
    random.Random(4).shuffle(rows)
    walker = verification.ChainWalker()
    for row in rows:
        walker.feed(row)
    assert walker.finish().breaks == {}
    assert walker.checked == 7
    assert walker.heads[history[0].client_id] == (5, history[-1].hash)


def test_a_gap_is_reported_when_the_rows_after_it_never_find_their_turn(history):
    walker = verification.ChainWalker()
    for row in walked_rows():
        if row[0] != history[0].pk:  # the first event is gone
            walker.feed(row)
    breaks = walker.finish().breaks
    assert f"event {history[1].pk} (seq 2): events 1..1 of the chain are missing" in breaks[history[0].client_id]


def test_a_copied_row_is_a_repeat(history):
    rows = walked_rows()
    walker = verification.ChainWalker()
    for row in [*rows, rows[1]]:
        walker.feed(row)
    assert "repeats or goes back" in walker.finish().breaks[history[0].client_id]


@pytest.mark.django_db(transaction=True)  # the workers read what is committed
def test_two_worker_processes_find_the_same_break(history, acme):
    if connection.vendor != "postgresql":
        pytest.skip("worker processes read PostgreSQL")
    with triggers_dropped() as cursor:
        cursor.execute("UPDATE activitylog_authevent SET ip = '192.0.2.66' WHERE id = %s", [history[2].pk])
    assert verify("--workers", "2") == verify("--workers", "1")
    assert f"event {history[2].pk} (seq 3)" in verify("--workers", "2")[1]


def test_a_chain_stored_far_out_of_order_is_checked_again_in_order(history, monkeypatch):
    from activitylog.verification import chains_verify

    monkeypatch.setattr(verification, "PENDING_LIMIT", 1)
    walker = verification.ChainWalker()
    for row in reversed(walked_rows()):
        walker.feed(row)
    assert walker.finish().breaks == {}
    assert history[0].client_id in walker.deferred

    report = chains_verify()  # reads the table, then the deferred chains in order
    assert report.breaks == {} and report.checked == 7


def test_a_real_gap_is_still_caught_in_an_out_of_order_chain(history, monkeypatch):
    from activitylog.verification import chains_verify

    monkeypatch.setattr(verification, "PENDING_LIMIT", 1)
    with triggers_dropped() as cursor:
        cursor.execute("DELETE FROM activitylog_authevent WHERE id = %s", [history[0].pk])
    report = chains_verify()
    assert "events 1..1 of the chain are missing" in report.breaks[history[0].client_id]


def test_an_address_in_another_spelling_is_stored_and_hashed_in_one(acme):
    event = auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN_FAILED, ip="2001:DB8:0:0::1")
    assert AuthEvent.objects.get(pk=event.pk).ip == "2001:db8::1"
    assert verify()[0] == 0


def test_waiting_rows_are_bounded_across_all_clients(history, globex, monkeypatch):
    from activitylog.verification import chains_verify

    monkeypatch.setattr(verification, "PENDING_TOTAL_LIMIT", 2)
    walker = verification.ChainWalker()
    for row in reversed(walked_rows()):
        walker.feed(row)
    assert walker._pending_total <= 2
    assert walker.deferred  # set aside, to be read again in order
    assert chains_verify().breaks == {}


def test_an_edited_event_id_is_caught(history, acme):
    """Exports de-duplicate by event id and resync orders by it, so an id is evidence too."""
    head = history[-1]
    new_id = head.pk + 1000  # still after every other id: only the hash can tell
    with triggers_dropped() as cursor:
        cursor.execute("UPDATE activitylog_authevent SET id = %s WHERE id = %s", [new_id, head.pk])

    code, output = verify()

    assert code == 1
    assert f"Client {acme.client.pk}" in output
    assert f"event {new_id} (seq {head.seq})" in output


def test_swapped_event_ids_are_caught(history, acme):
    first, second = history[1], history[2]
    with triggers_dropped() as cursor:
        cursor.execute("UPDATE activitylog_authevent SET id = -1 WHERE id = %s", [first.pk])
        cursor.execute("UPDATE activitylog_authevent SET id = %s WHERE id = %s", [first.pk, second.pk])
        cursor.execute("UPDATE activitylog_authevent SET id = %s WHERE id = -1", [second.pk])

    code, output = verify()

    assert code == 1
    assert f"Client {acme.client.pk}" in output
    assert f"event {second.pk} (seq {first.seq})" in output
    assert "Tampering detected in 1 of 2 client chains" in output


def test_ids_swapped_between_two_clients_are_caught(history, acme, globex):
    globex_head = AuthEvent.objects.filter(client=globex.client).order_by("-seq").first()
    acme_head = history[-1]
    with triggers_dropped() as cursor:
        cursor.execute("UPDATE activitylog_authevent SET id = -1 WHERE id = %s", [acme_head.pk])
        cursor.execute("UPDATE activitylog_authevent SET id = %s WHERE id = %s", [acme_head.pk, globex_head.pk])
        cursor.execute("UPDATE activitylog_authevent SET id = %s WHERE id = -1", [globex_head.pk])

    code, output = verify()

    assert code == 1
    assert f"Client {acme.client.pk} (Acme Client Co): broken at event {globex_head.pk}" in output
    assert f"Client {globex.client.pk} (Globex Client Co): broken at event {acme_head.pk}" in output


def test_a_row_passed_off_as_the_old_form_is_caught(history):
    """Rows of the old form (v1) do not hash their id; relabelling a row v1 breaks its hash instead."""
    head = history[-1]
    with triggers_dropped() as cursor:
        cursor.execute(
            "UPDATE activitylog_authevent SET chain_version = 1, id = %s WHERE id = %s", [head.pk + 1000, head.pk]
        )

    code, output = verify()

    assert code == 1
    assert f"event {head.pk + 1000} (seq {head.seq})" in output


def test_an_unknown_chain_version_is_a_broken_link_not_a_crash(history):
    with triggers_dropped() as cursor:
        cursor.execute("UPDATE activitylog_authevent SET chain_version = 9 WHERE id = %s", [history[2].pk])

    code, output = verify()

    assert code == 1
    assert f"event {history[2].pk} (seq 3)" in output and "do not match its hash" in output


GOLDEN_EVENT = {
    "id": 99, "seq": 3, "prev_hash": "a" * 64, "agency_id": 1, "client_id": 2, "user_id": 5,
    "email": "client@acme.test", "event_type": "login",
    "occurred_at": datetime(2026, 3, 14, 15, 9, 26, 535897, tzinfo=UTC), "ip": "2001:db8::1",
    "user_agent": 'Mozilla/5.0 "quoted" ü', "browser": "Chrome 131", "os": "Windows 10",
    "session_ref": "b" * 64, "reason": "",
}


def test_events_of_the_old_form_keep_the_hash_the_previous_release_gave_them():
    # Computed by the release before ids were hashed: an upgrade must not move a single v1 hash.
    v1 = chain.event_hash({**GOLDEN_EVENT, "chain_version": 1}, key=b"golden-key")
    assert v1 == "0ef8ffebb8c0db679c03e9ee8a8902d869c6b271dc83a778b6bd1fcb81ba7bfb"
    assert chain.event_hash({**GOLDEN_EVENT, "chain_version": 1, "id": 100}, key=b"golden-key") == v1


def test_events_of_the_current_form_hash_their_id():
    v2 = chain.event_hash({**GOLDEN_EVENT, "chain_version": 2}, key=b"golden-key")
    assert v2 == "3c676da220b868d37a80d334b91ab4182e4a341245ae2ca0c2f3c7acabf19956"
    assert chain.event_hash({**GOLDEN_EVENT, "chain_version": 2, "id": 100}, key=b"golden-key") != v2


@pytest.mark.parametrize("key", [b"\x00", b"golden-key", b"k" * 64, b"k" * 65, bytes(range(256))])
def test_the_walks_hasher_gives_hmacs_own_digests_for_every_length_of_key(key):
    hasher = chain.ChainHasher(key)
    for message in (b"", b"x", chain.canonical_bytes({**GOLDEN_EVENT, "chain_version": 2}), bytes(range(256)) * 5):
        assert hasher.hexdigest(message) == hmac.new(key, message, "sha256").hexdigest()
    canonical = chain.canonical_text(2, GOLDEN_EVENT["id"], [GOLDEN_EVENT[name] for name in chain.HASHED_FIELDS])
    stored = chain.event_hash({**GOLDEN_EVENT, "chain_version": 2}, key=key)
    assert hasher.matches(stored, canonical)
    assert not hasher.matches(stored, canonical + " ")
    assert not hasher.matches(stored, None)


def test_new_events_get_their_id_before_they_are_hashed(acme):
    event = auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN)
    stored = AuthEvent.objects.values("id", "chain_version", *chain.HASHED_FIELDS).get(pk=event.pk)
    assert stored["chain_version"] == chain.CHAIN_VERSION == 2
    assert AuthEvent.objects.get(pk=event.pk).hash == chain.event_hash(stored)


def _record_as_the_previous_release_did(user, count: int) -> None:
    """Raw inserts of the release before 0004: the database picks the id, the hash is v1."""
    head = AuthEvent.objects.filter(client_id=user.client_id).order_by("-seq").values_list("seq", "hash").first()
    seq, prev_hash = head if head else (0, chain.GENESIS)
    with connection.cursor() as cursor:
        for n in range(count):
            seq += 1
            values = {
                "chain_version": 1, "id": None, "seq": seq, "prev_hash": prev_hash,
                "agency_id": user.client.agency_id, "client_id": user.client_id, "user_id": user.pk,
                "email": user.email, "event_type": EventType.LOGIN_FAILED, "ip": "203.0.113.9",
                "occurred_at": datetime(2026, 1, 1, 12, n, tzinfo=UTC), "user_agent": "", "browser": "",
                "os": "", "session_ref": "", "reason": "bad_password",
            }
            prev_hash = chain.event_hash(values)
            cursor.execute(
                "INSERT INTO activitylog_authevent (agency_id, client_id, user_id, email, event_type, occurred_at,"
                " ip, user_agent, browser, os, session_ref, reason, seq, prev_hash, hash)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, '', '', '', '', %s, %s, %s, %s)",
                [values["agency_id"], values["client_id"], values["user_id"], values["email"], values["event_type"],
                 values["occurred_at"], values["ip"], values["reason"], seq, values["prev_hash"], prev_hash],
            )


@pytest.mark.django_db(transaction=True)  # migrations run outside a transaction
def test_an_upgrade_keeps_old_events_verifying_and_anchors_valid_and_old_ids_in_order(acme, tmp_path):
    executor = MigrationExecutor(connection)
    executor.migrate([("activitylog", "0003_portal_sessions")])
    try:
        _record_as_the_previous_release_did(acme.portal_user, 3)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    anchor = tmp_path / "before.json"
    assert verify("--write-anchor", str(anchor))[0] == 0

    for _ in range(2):
        auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN_FAILED, reason="bad_password")

    assert list(AuthEvent.objects.order_by("seq").values_list("chain_version", flat=True)) == [1, 1, 1, 2, 2]
    code, output = verify("--anchor", str(anchor))
    assert code == 0, output
    # An old event's id is not hashed, but ids grow along a chain: swapping two is still seen.
    first, second = AuthEvent.objects.order_by("seq").values_list("id", flat=True)[:2]
    with triggers_dropped() as cursor:
        cursor.execute("UPDATE activitylog_authevent SET id = -1 WHERE id = %s", [first])
        cursor.execute("UPDATE activitylog_authevent SET id = %s WHERE id = %s", [first, second])
        cursor.execute("UPDATE activitylog_authevent SET id = %s WHERE id = -1", [second])
    code, output = verify()
    assert code == 1
    assert f"event {first} (seq 2) (after event {second}): its id is not after the id of the event before it" in output


# Every control character, both quotes, backslash and slash, DEL, other scripts, an emoji
# and the line separators JSON lets through: whatever a user agent may carry.
HOSTILE_TEXT = "".join(map(chr, range(1, 32))) + "\"'\\/\x7f ü ß 中文 😀 \u2028\u2029 </script>"


def test_postgresql_renders_the_canonical_text_exactly_as_python_does(acme):
    """The walk hashes what PostgreSQL renders (chain.canonical_sql): it must be byte for byte chain.canonical_text."""
    if connection.vendor != "postgresql":
        pytest.skip("only PostgreSQL renders the canonical text itself")
    events = [
        auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN_FAILED, reason="bad_password",
                          ip="2001:db8::7", user_agent=HOSTILE_TEXT),
        auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN, user_agent=HOSTILE_TEXT[::-1]),
    ]
    _record_as_the_previous_release_did(acme.portal_user, 1)  # a version 1 row, no id hashed
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {verification._columns()} FROM {verification._source()} ORDER BY seq")
        rendered = cursor.fetchall()
    expected = [verification.walked_row(row) for row in AuthEvent.objects.order_by("seq").values_list(
        *verification.READ_COLUMNS)]

    assert len(rendered) == 3 and HOSTILE_TEXT in AuthEvent.objects.get(pk=events[0].pk).user_agent
    assert rendered == expected
    assert verify()[0] == 0


# Each string the canonical text holds, and what PostgreSQL's fast rendering must notice
# in it: one quote or one backslash is a single byte more once escaped.
ESCAPED_STRINGS = ("prev_hash", "email", "event_type", "user_agent", "browser", "os", "session_ref", "reason")


@pytest.mark.parametrize("text", [HOSTILE_TEXT, 'a"b', "a\\b", "a\nb", "a\x1fb"])
def test_postgresql_renders_a_character_json_escapes_in_any_string_exactly_as_python_does(acme, text):
    """Rows whose strings need no escaping take chain.canonical_fast_sql's plain path; no other row may."""
    if connection.vendor != "postgresql":
        pytest.skip("only PostgreSQL renders the canonical text itself")
    for _ in ESCAPED_STRINGS:
        auth_event_record(user=acme.portal_user, event_type=EventType.LOGIN_FAILED, reason="bad_password")
    ids = list(AuthEvent.objects.order_by("seq").values_list("id", flat=True))
    with triggers_dropped() as cursor:
        for event_id, column in zip(ids, ESCAPED_STRINGS):
            cursor.execute(f"UPDATE activitylog_authevent SET {column} = %s WHERE id = %s",
                           [text[:AuthEvent._meta.get_field(column).max_length], event_id])
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {verification._columns()} FROM {verification._source()} ORDER BY seq")
        rendered = cursor.fetchall()
    expected = [verification.walked_row(row) for row in AuthEvent.objects.order_by("seq").values_list(
        *verification.READ_COLUMNS)]

    assert all(json.dumps(text[:20], ensure_ascii=False)[1:-1] in row[5] for row in rendered)
    assert rendered == expected
