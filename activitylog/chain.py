"""
The tamper-evident hash chain over each client's activity log.

Every event stores `prev_hash` (the previous event's `hash`, or GENESIS for a client's
first event) and `hash` = HMAC-SHA-256(chain key, canonical bytes of its fields and
prev_hash). Editing, deleting, inserting or reordering any row breaks a link that
`verify_activity_log` recomputes. The HMAC key lives outside the database, so someone
with only database access cannot forge a new, consistent chain after tampering.
"""

import hashlib
import hmac
import json
from datetime import UTC, datetime
from functools import lru_cache

from django.conf import settings

GENESIS = "0" * 64

# The form new events are hashed in. v2 hashes the event's id too: exports de-duplicate by
# id and resync orders by it, so an edited or swapped id must break the chain. v1 (events
# written before ids were allocated ahead of the hash) is still verified as it was written.
# The version is the first thing hashed, so a v2 row cannot be passed off as v1 without
# breaking its hash.
CHAIN_VERSION = 2

# The hashed fields, in order, after the version tag (and, from v2, the event's id).
# Changing this list is a new CHAIN_VERSION.
HASHED_FIELDS = (
    "seq", "prev_hash", "agency_id", "client_id", "user_id", "email", "event_type",
    "occurred_at", "ip", "user_agent", "browser", "os", "session_ref", "reason",
)


@lru_cache(maxsize=4)
def _key(secret: str, chain_key: str) -> bytes:
    if chain_key:
        return chain_key.encode()
    return hashlib.sha256(b"agencyhandy.activitylog.chain:" + secret.encode()).digest()


def chain_key() -> bytes:
    return _key(settings.SECRET_KEY, settings.ACTIVITYLOG_CHAIN_KEY)


def format_timestamp(value: datetime) -> str:
    """ISO 8601 in UTC with microseconds: the one spelling used in hashes and exports."""
    value = value.astimezone(UTC)
    if value.year < 1000:  # strftime does not pad such years; isoformat would
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # The same text as strftime("%Y-%m-%dT%H:%M:%S.%fZ"), in a third of the time: it is
    # computed for every event that verify_activity_log checks.
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


class UnknownChainVersion(ValueError):
    """A row claims a chain version this code does not know: it cannot verify."""


def canonical_row(version: int, event_id: int, values) -> bytes:
    """
    The exact bytes that are hashed for one event: its version tag, its id (from v2), then
    its HASHED_FIELDS values in order.
    """
    if version == 2:
        row, at = ["v2", event_id, *values], 9
    elif version == 1:
        row, at = ["v1", *values], 8
    else:
        raise UnknownChainVersion(f"unknown chain version {version!r}")
    if not isinstance(row[at], str):  # occurred_at; a bulk reader may have formatted it already
        row[at] = format_timestamp(row[at])
    row[at + 1] = "" if row[at + 1] is None else str(row[at + 1])  # ip
    return json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode()


def canonical_bytes(values: dict) -> bytes:
    """The exact bytes that are hashed for one event, from a dict of chain_version, id and HASHED_FIELDS."""
    return canonical_row(values["chain_version"], values["id"], [values[name] for name in HASHED_FIELDS])


def event_hash(values: dict, key: bytes | None = None) -> str:
    # hmac.digest is the one-shot C path: the same HMAC as hmac.new(...).hexdigest().
    return hmac.digest(key or chain_key(), canonical_bytes(values), "sha256").hex()


# A row as ChainWalker reads it: id, hash, chain version, then HASHED_FIELDS in order.
WALKED_COLUMNS = ("id", "hash", "chain_version", *HASHED_FIELDS)
_VERSION, _FIELDS = 2, 3
_CLIENT = _FIELDS + HASHED_FIELDS.index("client_id")
# What ChainWalker keeps of a row once its hash is checked: (id, hash, seq, prev_hash, contents ok).
_SEQ, _PREV, _OK = 2, 3, 4
# Rows that come before their turn wait, up to this many a client and in all; a client
# whose rows are further out of order than that is set aside and checked again in `seq`
# order. The limits keep memory bounded (a waiting row is about 300 bytes).
PENDING_LIMIT = 100_000
PENDING_TOTAL_LIMIT = 500_000


class _Chain:
    __slots__ = ("next_seq", "prev_hash", "prev_id", "ordered", "count", "head_seq", "head_hash", "pending",
                 "broken", "deferred")

    def __init__(self) -> None:
        self.next_seq, self.prev_hash, self.prev_id, self.ordered = 1, GENESIS, None, 0
        self.count, self.head_seq, self.head_hash = 0, 0, GENESIS
        self.pending: dict[int, tuple] = {}
        self.broken = self.deferred = False


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
    `deferred` lists the clients whose rows came too far out of order: walk them again,
    in `seq` order, with a walker of their own.
    """

    def __init__(self, key: bytes | None = None, checkpoints: dict[int, int] | None = None,
                 set_aside: bool = True) -> None:
        self.key = key or chain_key()
        self.checkpoints = checkpoints or {}
        # A walker fed in seq order has nothing to set aside: a gap there is a real gap.
        self.pending_limit = PENDING_LIMIT if set_aside else None
        self.pending_total_limit = PENDING_TOTAL_LIMIT if set_aside else None
        self._pending_total = 0
        self.breaks: dict[int, str] = {}
        self.hashes_at: dict[int, str] = {}
        self.checked = 0
        self._chains: dict[int, _Chain] = {}

    @property
    def heads(self) -> dict[int, tuple[int, str]]:
        return {client: (c.count, c.head_hash) for client, c in self._chains.items()}

    @property
    def deferred(self) -> list[int]:
        return [client for client, c in self._chains.items() if c.deferred]

    def feed(self, row: tuple) -> None:
        client_id, seq = row[_CLIENT], row[_FIELDS]
        chain = self._chains.get(client_id)
        if chain is None:
            chain = self._chains[client_id] = _Chain()
        self.checked += 1
        chain.count += 1
        if seq >= chain.head_seq:
            chain.head_seq, chain.head_hash = seq, row[1]
        if chain.broken or chain.deferred:
            return
        # A row's own hash does not depend on order: check it now, and keep only what the
        # links need (id, hash, seq, prev_hash, contents ok) for a row that has to wait.
        try:
            canonical = canonical_row(row[_VERSION], row[0], row[_FIELDS:])
        except UnknownChainVersion:
            canonical = None  # an altered version column: the row cannot match its hash
        ok = canonical is not None and hmac.compare_digest(hmac.digest(self.key, canonical, "sha256").hex(), row[1])
        row = (row[0], row[1], seq, row[_FIELDS + 1], ok)
        if seq == chain.next_seq:
            self._check(client_id, chain, row)
            while not chain.broken and chain.next_seq in chain.pending:
                self._pending_total -= 1
                self._check(client_id, chain, chain.pending.pop(chain.next_seq))
        elif seq < chain.next_seq or seq in chain.pending:
            self._break(client_id, chain, row,
                        f"sequence number {seq} repeats or goes back (an inserted or copied row)")
        else:
            chain.pending[seq] = row
            self._pending_total += 1
            if self.pending_limit is not None and len(chain.pending) > self.pending_limit:
                self._set_aside(chain)
            elif self.pending_total_limit is not None and self._pending_total > self.pending_total_limit:
                self._set_aside(max(self._chains.values(), key=lambda c: len(c.pending)))

    def _set_aside(self, chain: _Chain) -> None:
        self._pending_total -= len(chain.pending)
        chain.pending.clear()
        chain.deferred = True

    def finish(self) -> "ChainWalker":
        for client_id, chain in self._chains.items():
            if chain.pending and not chain.broken:
                self._gap(client_id, chain)
        return self

    def _gap(self, client_id: int, chain: _Chain) -> None:
        first = chain.pending[min(chain.pending)]
        self._break(client_id, chain, first,
                    f"events {chain.next_seq}..{first[_SEQ] - 1} of the chain are missing (deleted rows)")

    def _check(self, client_id: int, chain: _Chain, row: tuple) -> None:
        if row[_PREV] != chain.prev_hash:
            self._break(client_id, chain, row, "does not link to the event before it (rows deleted, inserted or reordered)")
            return
        if not row[_OK]:
            self._break(client_id, chain, row, "its contents or id do not match its hash (the row was edited)")
            return
        if chain.prev_id is not None and row[0] <= chain.prev_id:
            # Ids are allocated under the client's lock, so they grow along a chain. This also
            # guards v1 rows, whose hash does not cover their id, against swapped ids.
            self._break(client_id, chain, row, "its id is not after the id of the event before it (ids edited or swapped)")
            return
        chain.ordered += 1
        if self.checkpoints.get(client_id) == chain.ordered:
            self.hashes_at[client_id] = row[1]
        chain.next_seq, chain.prev_hash, chain.prev_id = row[_SEQ] + 1, row[1], row[0]

    def _break(self, client_id: int, chain: _Chain, row: tuple, problem: str) -> None:
        after = f" (after event {chain.prev_id})" if chain.prev_id else ""
        self.breaks[client_id] = f"event {row[0]} (seq {row[_SEQ]}){after}: {problem}"
        chain.broken = True
        self._pending_total -= len(chain.pending)
        chain.pending.clear()
