"""
Recompute the hash chains of the log, fast: one pass over the table in its physical order
(no sort of ten million rows), the rows read as plain tuples with their canonical text
rendered by PostgreSQL, and on PostgreSQL two processes, each taking half of the clients.
Or, from an anchor, only the events added since (`chains_verify_since`).

`ChainWalker` checks rows in whatever order they come; `chains_verify` reads the table
into walkers. The hashing itself is chain.py's.
"""

import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import NamedTuple

import django
from django.db import connection, connections

from activitylog.anchors import Anchor
from activitylog.chain import (
    GENESIS,
    HASHED_FIELDS,
    ChainHasher,
    UnknownChainVersion,
    canonical_fast_sql,
    canonical_tail_sql,
    canonical_text,
    chain_key,
    text_hash_matches,
)

# A row as the walk takes it: id, hash, seq, prev_hash, client id, and the event's
# canonical text (chain.canonical_text; None for a version this code does not know).
WALKED_COLUMNS = ("id", "hash", "seq", "prev_hash", "client_id", "canonical")
# What walked_row reads to render the canonical text in Python, where PostgreSQL does not.
READ_COLUMNS = ("id", "hash", "chain_version", *HASHED_FIELDS)
# Rows that come before their turn wait, up to this many a client and in all; a client
# whose rows are further out of order than that is set aside and checked again in `seq`
# order. The limits keep memory bounded (a waiting row is about 300 bytes).
PENDING_LIMIT = 100_000
PENDING_TOTAL_LIMIT = 500_000

FETCH_ROWS = 20_000
# Below this many events, starting worker processes costs more than it saves.
PARALLEL_FROM = 500_000


def walked_row(row: tuple) -> tuple:
    """A row of READ_COLUMNS as the walk takes it (WALKED_COLUMNS), its canonical text rendered in Python."""
    event_id, stored_hash, version, *values = row
    try:
        canonical = canonical_text(version, event_id, values)
    except UnknownChainVersion:
        canonical = None
    # HASHED_FIELDS begins with seq, prev_hash, agency_id, client_id.
    return event_id, stored_hash, values[0], values[1], values[3], canonical


class _Waiting(NamedTuple):
    """What the walk keeps of a row that came before its turn, its own hash already checked."""

    id: int
    hash: str
    seq: int
    prev_hash: str
    hash_ok: bool


class _Chain:
    """One client's chain, as far as the walk has got."""

    __slots__ = ("client_id", "next_seq", "prev_hash", "prev_id", "linked", "seen", "head_seq", "head_hash",
                 "pending", "broken", "deferred")

    def __init__(self, client_id: int) -> None:
        self.client_id = client_id
        # The next event in seq order must have next_seq, link to prev_hash and have an id after prev_id.
        self.next_seq, self.prev_hash, self.prev_id = 1, GENESIS, None
        self.linked = 0  # events checked in seq order so far
        self.seen = 0  # events fed, in any order
        self.head_seq, self.head_hash = 0, GENESIS  # the highest seq fed: the head an anchor keeps
        self.pending: dict[int, _Waiting] = {}  # by seq
        self.broken = False
        self.deferred = False  # too far out of order here: walked again in seq order


class ChainWalker:
    """
    Checks the rows of many chains, fed in any order (one pass over the table in its
    physical order is the fast way to read ten million rows). Each client's rows are
    checked in `seq` order: a row that comes early waits in a buffer for the rows before
    it (only its id and hashes; its contents are checked on arrival).

    `feed` takes tuples of WALKED_COLUMNS. After `finish`, `breaks` maps each client
    with a problem to its first broken link, and `heads` maps every client to (events
    seen, hash of its highest event) for anchors. `checkpoints` ({client_id: n}) asks
    for the hash of a client's n-th event, found in `hashes_at`: an anchor's old head.
    `starts` ({client_id: (n, hash, id)}) takes a client's first n events as checked,
    the n-th with that hash and id: the walk goes on from there. `deferred` lists the
    clients whose rows came too far out of order: walk them again, in `seq` order, with
    a walker of their own.
    """

    def __init__(self, key: bytes | None = None, checkpoints: dict[int, int] | None = None,
                 set_aside: bool = True, starts: dict[int, tuple[int, str, int]] | None = None) -> None:
        self.key = key or chain_key()
        self._matches = ChainHasher(self.key).matches
        self.checkpoints = checkpoints or {}
        # A walker fed in seq order has nothing to set aside: a gap there is a real gap.
        self.pending_limit = PENDING_LIMIT if set_aside else None
        self.pending_total_limit = PENDING_TOTAL_LIMIT if set_aside else None
        self._pending_total = 0
        self.breaks: dict[int, str] = {}
        self.hashes_at: dict[int, str] = {}
        self.checked = 0
        self._chains: dict[int, _Chain] = {}
        for client_id, (count, head_hash, head_id) in (starts or {}).items():
            chain = self._chains[client_id] = _Chain(client_id)
            chain.next_seq, chain.prev_hash, chain.prev_id = count + 1, head_hash, head_id
            chain.linked = chain.seen = chain.head_seq = count
            chain.head_hash = head_hash

    @property
    def heads(self) -> dict[int, tuple[int, str]]:
        return {client_id: (chain.seen, chain.head_hash) for client_id, chain in self._chains.items()}

    @property
    def deferred(self) -> list[int]:
        return [client_id for client_id, chain in self._chains.items() if chain.deferred]

    def feed(self, row: tuple) -> None:
        event_id, stored_hash, seq, prev_hash, client_id, canonical = row
        chain = self._chains.get(client_id)
        if chain is None:
            chain = self._chains[client_id] = _Chain(client_id)
        self.checked += 1
        chain.seen += 1
        if seq >= chain.head_seq:
            chain.head_seq, chain.head_hash = seq, stored_hash
        if chain.broken or chain.deferred:
            return
        # A row's own hash does not depend on order: check it now, so that a row that has
        # to wait keeps only its links.
        hash_ok = self._matches(stored_hash, canonical)
        if seq == chain.next_seq:
            self._link(chain, event_id, stored_hash, seq, prev_hash, hash_ok)
            while not chain.broken and chain.next_seq in chain.pending:
                self._pending_total -= 1
                self._link(chain, *chain.pending.pop(chain.next_seq))
        elif seq < chain.next_seq or seq in chain.pending:
            self._break(chain, event_id, seq,
                        f"sequence number {seq} repeats or goes back (an inserted or copied row)")
        else:
            self._wait(chain, _Waiting(event_id, stored_hash, seq, prev_hash, hash_ok))

    def feed_many(self, rows: Iterable[tuple]) -> None:
        """
        `feed` each row, the usual case inlined: the next event of an intact chain that
        nothing waits in, whose hash, link and id check out, only moves the chain on.
        Anything else (a client's first row, a row out of turn, a break, a checkpoint)
        takes `feed`'s path, from the start. The walk's own bookkeeping per event drops
        to about a third of feed's, where a full check spends it ten million times.
        """
        chains, matches, checkpoints, feed = self._chains, self._matches, self.checkpoints, self.feed
        fast = 0
        for row in rows:
            event_id, stored_hash, seq, prev_hash, client_id, canonical = row
            chain = chains.get(client_id)
            if (chain is None or seq != chain.next_seq or prev_hash != chain.prev_hash or chain.pending
                    or chain.broken or chain.deferred or client_id in checkpoints
                    or (chain.prev_id is not None and event_id <= chain.prev_id)
                    or not matches(stored_hash, canonical)):
                feed(row)
                continue
            # What feed and _link do here: nothing waits, so this row is also the head.
            fast += 1
            chain.seen += 1
            chain.linked += 1
            chain.head_seq, chain.head_hash = seq, stored_hash
            chain.next_seq, chain.prev_hash, chain.prev_id = seq + 1, stored_hash, event_id
        self.checked += fast

    def finish(self) -> "ChainWalker":
        for chain in self._chains.values():
            if chain.pending and not chain.broken:
                first = chain.pending[min(chain.pending)]
                self._break(chain, first.id, first.seq,
                            f"events {chain.next_seq}..{first.seq - 1} of the chain are missing (deleted rows)")
        return self

    def _link(self, chain: _Chain, event_id: int, stored_hash: str, seq: int, prev_hash: str,
              hash_ok: bool) -> None:
        """Append the event of seq `chain.next_seq` to its chain, or break the chain there."""
        if prev_hash != chain.prev_hash:
            problem = "does not link to the event before it (rows deleted, inserted or reordered)"
        elif not hash_ok:
            problem = "its contents or id do not match its hash (the row was edited)"
        elif chain.prev_id is not None and event_id <= chain.prev_id:
            # Ids are allocated under the client's lock, so they grow along a chain. This also
            # guards v1 rows, whose hash does not cover their id, against swapped ids.
            problem = "its id is not after the id of the event before it (ids edited or swapped)"
        else:
            chain.linked += 1
            if self.checkpoints.get(chain.client_id) == chain.linked:
                self.hashes_at[chain.client_id] = stored_hash
            chain.next_seq, chain.prev_hash, chain.prev_id = seq + 1, stored_hash, event_id
            return
        self._break(chain, event_id, seq, problem)

    def _wait(self, chain: _Chain, row: _Waiting) -> None:
        chain.pending[row.seq] = row
        self._pending_total += 1
        if self.pending_limit is not None and len(chain.pending) > self.pending_limit:
            self._set_aside(chain)
        elif self.pending_total_limit is not None and self._pending_total > self.pending_total_limit:
            self._set_aside(max(self._chains.values(), key=lambda c: len(c.pending)))

    def _set_aside(self, chain: _Chain) -> None:
        self._pending_total -= len(chain.pending)
        chain.pending.clear()
        chain.deferred = True

    def _break(self, chain: _Chain, event_id: int, seq: int, problem: str) -> None:
        after = f" (after event {chain.prev_id})" if chain.prev_id else ""
        self.breaks[chain.client_id] = f"event {event_id} (seq {seq}){after}: {problem}"
        chain.broken = True
        self._pending_total -= len(chain.pending)
        chain.pending.clear()


@dataclass
class ChainReport:
    checked: int = 0
    breaks: dict[int, str] = field(default_factory=dict)
    heads: dict[int, tuple[int, str]] = field(default_factory=dict)
    hashes_at: dict[int, str] = field(default_factory=dict)
    # chains_verify_since: the events taken on trust (up to the anchor), and what no
    # longer matches the anchor, by client.
    trusted: int = 0
    anchor_problems: dict[int, str] = field(default_factory=dict)

    def merge(self, other: "ChainReport") -> "ChainReport":
        self.checked += other.checked
        self.breaks.update(other.breaks)
        self.heads.update(other.heads)
        self.hashes_at.update(other.hashes_at)
        return self


def _columns() -> str:
    """
    The SQL for the walk's rows, read FROM _source(): WALKED_COLUMNS on PostgreSQL, which
    renders each event's canonical text itself (chain.canonical_fast_sql), so no list is
    built and JSON-encoded per row in Python; elsewhere READ_COLUMNS, for walked_row.
    """
    if connection.vendor != "postgresql":
        return ", ".join(READ_COLUMNS)
    canonical = canonical_fast_sql("rendered.tail", occurred_at=_OCCURRED_AT_SQL, ip=_IP_SQL)
    return f"id, hash, seq, prev_hash, client_id, {canonical}"


def _source() -> str:
    """
    The events as _columns() reads them. On PostgreSQL each comes with its canonical
    text's unescaped middle (chain.canonical_tail_sql) as `rendered.tail`: OFFSET 0 keeps
    that a subquery of its own, computed once a row, where a folded one would be built
    again for each of its uses.
    """
    if connection.vendor != "postgresql":
        return "activitylog_authevent"
    tail = canonical_tail_sql(occurred_at=_OCCURRED_AT_SQL, ip=_IP_SQL)
    return f"activitylog_authevent CROSS JOIN LATERAL (SELECT {tail} OFFSET 0) AS rendered (tail)"


# occurred_at and ip as the very text that is hashed (chain.format_timestamp's spelling;
# host() is the address as Django reads it).
_OCCURRED_AT_SQL = """to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
_IP_SQL = "coalesce(host(ip), '')"


def _stream(walker: ChainWalker, sql: str, params: list) -> None:
    # A server-side cursor on PostgreSQL: rows stream in, memory stays flat.
    rendered = connection.vendor == "postgresql"
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(FETCH_ROWS):
            walker.feed_many(rows if rendered else map(walked_row, rows))


def _walk(part: int, parts: int, client_ids: list[int] | None, checkpoints: dict[int, int]) -> ChainReport:
    """Walk the chains of the clients with client_id % parts == part."""
    conditions, params = [], []
    if parts > 1:
        conditions.append("client_id %% %s = %s")
        params += [parts, part]
    if client_ids:
        conditions.append(f"client_id IN ({', '.join(['%s'] * len(client_ids))})")
        params += client_ids
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    walker = ChainWalker(checkpoints=checkpoints)
    _stream(walker, f"SELECT {_columns()} FROM {_source()}{where}", params)
    walker.finish()
    report = ChainReport(walker.checked, walker.breaks, walker.heads, walker.hashes_at)
    for client_id in walker.deferred:
        # Stored far out of chain order: read this one chain through its (client, seq) index.
        ordered = ChainWalker(checkpoints=checkpoints, set_aside=False)
        _stream(ordered, f"SELECT {_columns()} FROM {_source()} WHERE client_id = %s ORDER BY seq", [client_id])
        ordered.finish()
        report.breaks.update(ordered.breaks)
        report.hashes_at.update(ordered.hashes_at)
    return report


def _walk_in_worker(database_name: str, *args) -> ChainReport:
    django.setup()
    # The very database the parent reads (under the test runner, the test database).
    connections["default"].settings_dict["NAME"] = database_name
    try:
        return _walk(*args)
    finally:
        connections.close_all()


def _estimated_rows() -> int:
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = 'activitylog_authevent'")
        row = cursor.fetchone()
    return max(row[0], 0) if row else 0


def chains_verify(*, client_ids: list[int] | None = None, checkpoints: dict[int, int] | None = None,
                  workers: int | None = None) -> ChainReport:
    """Check every chain (or those of `client_ids`); see ChainWalker for what is checked."""
    checkpoints = checkpoints or {}
    if workers is None:
        workers = 2 if not client_ids and _estimated_rows() >= PARALLEL_FROM else 1
    workers = max(1, min(workers, os.cpu_count() or 1)) if connection.vendor == "postgresql" else 1
    if workers == 1:
        return _walk(0, 1, client_ids, checkpoints)
    database_name = connection.settings_dict["NAME"]
    connections.close_all()  # fresh processes ("spawn"): the parent's pool has threads
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        futures = [
            pool.submit(_walk_in_worker, database_name, part, workers, client_ids, checkpoints)
            for part in range(workers)
        ]
        report = ChainReport()
        for future in futures:
            report.merge(future.result())
    return report


# From an anchor ---------------------------------------------------------------------------------

# Where the walk of a client that has no anchor entry starts: before any seq a row can have.
_BEFORE_ANY_SEQ = -(2**63)


def chains_verify_since(anchor: Anchor, *, client_ids: list[int] | None = None) -> ChainReport:
    """
    Check what was added since `anchor`, taking the events it covers on trust: the cost
    grows with the new events, not with the history. docs/architecture.md ("Checking
    only what is new") says what this proves and what only a full check does.

    For each anchored client (of `client_ids`, if given), the anchored event must still
    be there, carry the anchored hash and match its own contents, and exactly that many
    events must lead up to it: otherwise `anchor_problems` says what changed. The events
    after it are then walked as chains_verify walks them, from the anchored hash. Clients
    the anchor does not know (new since) are walked whole.
    """
    anchored = {c: head for c, head in anchor.heads.items() if not client_ids or c in client_ids}
    report = ChainReport()
    starts = _anchored_starts(anchor, anchored, report.anchor_problems)
    report.trusted = sum(count for count, _, _ in starts.values())
    if client_ids is None:
        # Imported here: worker processes import this module before Django is set up.
        from clients.models import Client

        client_ids = list(Client.objects.values_list("pk", flat=True))
    positions = {client_id: _BEFORE_ANY_SEQ for client_id in client_ids if client_id not in anchored}
    positions.update((client_id, start[0]) for client_id, start in starts.items())
    walker = ChainWalker(starts=starts, set_aside=False)  # each chain's rows come in seq order
    walker.feed_many(_walked(_per_client(positions, select=_columns(), source=_source(), condition="seq > {n}",
                                         order_by="ORDER BY seq")))
    walker.finish()
    report.checked, report.breaks, report.heads = walker.checked, walker.breaks, walker.heads
    return report


def _anchored_starts(anchor: Anchor, anchored: dict[int, tuple[int, str]],
                     problems: dict[int, str]) -> dict[int, tuple[int, str, int]]:
    """
    Where each anchored chain's walk starts, ChainWalker's `starts`: (events, hash, id)
    of its anchored event. A chain whose anchored event or count changed gets a problem
    instead.
    """
    positions = {client_id: count for client_id, (count, _) in anchored.items()}
    events: dict[int, list[tuple]] = {}
    for row in _walked(_per_client(positions, select=_columns(), source=_source(), condition="seq = {n}")):
        events.setdefault(row[4], []).append(row)
    # The one part that reads history: the (client_id, seq) index's entries, never a row.
    counts = dict(_per_client(positions, select="count(*)", condition="seq <= {n}"))
    key, at = chain_key(), f"the anchor of {anchor.written_at}"
    starts = {}
    for client_id, (count, anchored_hash) in anchored.items():
        found = events.get(client_id, [])
        if not found:
            problems[client_id] = f"has no event {count} but had {count} events at {at}: events were cut from the end"
        elif len(found) > 1 or counts.get(client_id) != count:
            problems[client_id] = (f"has {counts.get(client_id)} events up to its anchored event {count}: "
                                   f"events before {at} were deleted or inserted")
        elif found[0][1] != anchored_hash:
            problems[client_id] = (f"event {count} of the chain no longer has the hash anchored at "
                                   f"{anchor.written_at}: the chain was cut and regrown, or rewritten")
        elif not text_hash_matches(found[0][1], found[0][5], key):
            problems[client_id] = (f"event {found[0][0]} (seq {count}), the anchored event: its contents or id "
                                   "do not match its hash (the row was edited)")
        else:
            starts[client_id] = (count, anchored_hash, found[0][0])
    return starts


def _per_client(positions: dict[int, int], *, select: str, condition: str, order_by: str = "",
                source: str = "activitylog_authevent") -> Iterator[tuple]:
    """
    `SELECT {select} FROM {source}` over each client's events that meet `condition`, in which `{n}`
    stands for the client's position in `positions`; as (client_id, *selected) tuples.

    On PostgreSQL, one query: a LATERAL join of the positions to the events, each client's
    rows found through the (client_id, seq) index from its position on, so the history
    before it is never read (docs/architecture.md shows the plan). Elsewhere, a query a client.
    """
    if not positions:
        return
    if connection.vendor == "postgresql":
        sql = (f"SELECT a.client_id, e.* FROM unnest(%s::bigint[], %s::bigint[]) AS a(client_id, n) "
               f"CROSS JOIN LATERAL (SELECT {select} FROM {source} "
               f"WHERE client_id = a.client_id AND {condition.format(n='a.n')} {order_by}) AS e")
        with connection.chunked_cursor() as cursor:
            cursor.execute(sql, [list(positions), list(positions.values())])
            while rows := cursor.fetchmany(FETCH_ROWS):
                yield from rows
        return
    sql = f"SELECT {select} FROM {source} WHERE client_id = %s AND {condition.format(n='%s')} {order_by}"
    with connection.cursor() as cursor:
        for client_id, n in positions.items():
            cursor.execute(sql, [client_id, n])
            for row in cursor.fetchall():
                yield client_id, *row


def _walked(rows: Iterator[tuple]) -> Iterator[tuple]:
    """The rows of _per_client(select=_columns(), source=_source()) as the walk takes them."""
    rendered = connection.vendor == "postgresql"
    for row in rows:
        yield row[1:] if rendered else walked_row(row[1:])
