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
CHAIN_VERSION = "v1"

# The hashed fields, in order. Changing this list is a new CHAIN_VERSION.
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


def canonical_bytes(values: dict) -> bytes:
    """The exact bytes that are hashed for one event, from a dict of HASHED_FIELDS."""
    row = [CHAIN_VERSION]
    for name in HASHED_FIELDS:
        value = values[name]
        if name == "occurred_at":
            value = format_timestamp(value)
        elif name == "ip":
            value = "" if value is None else str(value)
        row.append(value)
    return json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode()


def event_hash(values: dict, key: bytes | None = None) -> str:
    # hmac.digest is the one-shot C path: the same HMAC as hmac.new(...).hexdigest().
    return hmac.digest(key or chain_key(), canonical_bytes(values), "sha256").hex()


class ChainWalker:
    """
    Checks rows of one or many chains, fed in (client_id, seq, id) order.

    `feed` takes dicts with HASHED_FIELDS plus `id` and `hash`. Afterwards `breaks` maps
    each client with a problem to its first broken link, and `heads` maps every client to
    (events seen, last hash) for anchors. `checkpoints` ({client_id: n}) asks for the hash
    of a client's n-th event, found afterwards in `hashes_at`: an anchor's old head.
    """

    def __init__(self, key: bytes | None = None, checkpoints: dict[int, int] | None = None) -> None:
        self.key = key or chain_key()
        self.breaks: dict[int, str] = {}
        self.heads: dict[int, tuple[int, str]] = {}
        self.checkpoints = checkpoints or {}
        self.hashes_at: dict[int, str] = {}
        self.checked = 0
        self._client: int | None = None
        self._expected_seq = 1
        self._prev_hash = GENESIS
        self._prev_id: int | None = None

    def feed(self, row: dict) -> None:
        client_id = row["client_id"]
        if client_id != self._client:
            self._client, self._expected_seq, self._prev_hash, self._prev_id = client_id, 1, GENESIS, None
        self.checked += 1
        count = self.heads.get(client_id, (0, GENESIS))[0] + 1
        self.heads[client_id] = (count, row["hash"])
        if self.checkpoints.get(client_id) == count:
            self.hashes_at[client_id] = row["hash"]
        if client_id not in self.breaks:
            problem = self._check(row)
            if problem:
                after = f" (after event {self._prev_id})" if self._prev_id else ""
                self.breaks[client_id] = f"event {row['id']} (seq {row['seq']}){after}: {problem}"
        self._expected_seq = row["seq"] + 1
        self._prev_hash = row["hash"]
        self._prev_id = row["id"]

    def _check(self, row: dict) -> str:
        if row["seq"] < self._expected_seq:
            return f"sequence number {row['seq']} repeats or goes back (an inserted or copied row)"
        if row["seq"] > self._expected_seq:
            return f"events {self._expected_seq}..{row['seq'] - 1} of the chain are missing (deleted rows)"
        if row["prev_hash"] != self._prev_hash:
            return "does not link to the event before it (rows deleted, inserted or reordered)"
        if not hmac.compare_digest(event_hash(row, self.key), row["hash"]):
            return "its contents do not match its hash (the row was edited)"
        return ""
