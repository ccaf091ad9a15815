"""
One client's history, generated: sign-ins (10 % failed), and logouts of 80 % of the
sessions, from a few IPs and browsers, spread evenly over two to three years, each event
linked into the client's hash chain and written as a line of COPY text. The same seed
gives the same history.
"""

import hashlib
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from activitylog import chain

COPY_COLUMNS = (
    "id", "chain_version", "agency_id", "client_id", "user_id", "email", "event_type", "occurred_at", "ip",
    "user_agent", "browser", "os", "session_ref", "reason", "seq", "prev_hash", "hash",
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class ChainPlan:
    """The part of one client's history that a stage appends."""

    client_id: int
    agency_id: int
    users: list[tuple[int, str]]
    ips: list[str]
    total: int  # events in the client's whole history
    first_seq: int
    last_seq: int
    prev_hash: str
    start_us: int
    span_us: int
    first_id: int = 0  # the id of the event at first_seq; the plan's ids follow its seqs

    def base_us(self, seq: int) -> float:
        return self.start_us + (seq - 0.5) * self.span_us / self.total


class ChainState:
    """One client's chain while a stage is generated: the next seq, the last hash, a session."""

    def __init__(self, plan: ChainPlan, seed: int) -> None:
        self.plan = plan
        self.seq = plan.first_seq
        self.prev_hash = plan.prev_hash
        self.rng = random.Random(f"{seed}:events:{plan.client_id}:{plan.first_seq}")
        self.gap = plan.span_us / plan.total
        self.pending: tuple[int, str, str, int, str] | None = None  # the session waiting for its logout

    def generate_until(self, edge: float, out: list, key: bytes, ua_table) -> None:
        """Append (µs since the epoch, COPY line) to `out` for the plan's events before `edge`."""
        while self.seq <= self.plan.last_seq and self.plan.base_us(self.seq) < edge:
            micros, values = self._next_event(ua_table)
            digest = chain.event_hash(values, key)
            out.append((micros, _copy_line(values, digest)))
            self.prev_hash = digest
            self.seq += 1

    def _next_event(self, ua_table) -> tuple[int, dict]:
        plan, seq = self.plan, self.seq
        # Jitter stays under half the gap, so a client's events stay in time order.
        micros = int(plan.start_us + (seq - 0.5 + (self.rng.random() - 0.5) * 0.8) * self.gap)
        if self.pending is not None:
            (user_id, email, ip, ua_index, session_ref), self.pending = self.pending, None
            event_type, reason = "logout", ""
        else:
            user_id, email, ip, ua_index, event_type, session_ref, reason = self._attempt(len(ua_table))
        user_agent, browser, os_name = ua_table[ua_index]
        return micros, {
            "id": plan.first_id + seq - plan.first_seq, "chain_version": chain.CHAIN_VERSION,
            "agency_id": plan.agency_id, "client_id": plan.client_id, "user_id": user_id, "email": email,
            "event_type": event_type, "occurred_at": EPOCH + timedelta(microseconds=micros), "ip": ip,
            "user_agent": user_agent, "browser": browser, "os": os_name,
            "session_ref": session_ref, "reason": reason, "seq": seq, "prev_hash": self.prev_hash,
        }

    def _attempt(self, user_agents: int) -> tuple:
        """A sign-in attempt: who, from where, and how it went."""
        rng = self.rng
        user_id, email = rng.choice(self.plan.users)
        ip = rng.choice(self.plan.ips)
        ua_index = rng.randrange(user_agents)
        if rng.random() < 0.1:
            reason = "bad_password" if rng.random() < 0.9 else "account_inactive"
            return user_id, email, ip, ua_index, "login_failed", "", reason
        session_ref = hashlib.sha256(f"bench:{self.plan.client_id}:{self.seq}".encode()).hexdigest()
        if rng.random() < 0.8:  # the rest simply closed the browser
            self.pending = (user_id, email, ip, ua_index, session_ref)
        return user_id, email, ip, ua_index, "login", session_ref, ""


def _copy_line(v: dict, digest: str) -> str:
    """The event as a line of COPY text, in COPY_COLUMNS order (no value holds a tab or a newline)."""
    return (
        f"{v['id']}\t{v['chain_version']}\t{v['agency_id']}\t{v['client_id']}\t{v['user_id']}\t{v['email']}\t"
        f"{v['event_type']}\t{v['occurred_at'].isoformat()}\t{v['ip']}\t{v['user_agent']}\t{v['browser']}\t"
        f"{v['os']}\t{v['session_ref']}\t{v['reason']}\t{v['seq']}\t{v['prev_hash']}\t{digest}\n"
    )
