"""What the soak saw: deliveries expected against received, closes, latency; the table and the verdict."""

import math
from dataclasses import dataclass
from datetime import datetime


def expected_deliveries(tabs, events) -> list[tuple]:
    """(tab, event id) for every event and every tab that shows it."""
    pairs = []
    for event_id, client_id, event_type, _ in events:
        for tab in tabs:
            if tab.client_id == client_id and tab.tab.event_type in (None, event_type):
                pairs.append((tab, event_id))
    return pairs


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


@dataclass
class Result:
    duration: float
    urls: list[str]
    tabs: list
    client_ids: dict[str, int]
    events: list[tuple]  # (id, client id, event type, occurred_at)
    actions: int  # portal sign-ins and sign-outs made through the servers
    longest_idle: float
    server_errors: list[str]

    def __post_init__(self) -> None:
        expected = expected_deliveries(self.tabs, self.events)
        occurred: dict[int, datetime] = {e[0]: e[3] for e in self.events}
        wanted = {(id(tab), event_id) for tab, event_id in expected}
        self.expected = len(expected)
        self.received = self.duplicates = self.unexpected = 0
        self.latencies: list[float] = []  # ms, from the event's time of record to its frame
        for tab in self.tabs:
            for event_id, times in tab.arrivals.items():
                if (id(tab), event_id) not in wanted:
                    self.unexpected += len(times)
                    continue
                self.received += 1
                self.duplicates += len(times) - 1
                self.latencies.append((times[0] - occurred[event_id].timestamp()) * 1000)
        self.lost = self.expected - self.received
        self.closes = [f"{tab.tab.staff} on {tab.base_url}: {tab.closed}" for tab in self.tabs if tab.closed]

    def failures(self) -> list[str]:
        failures = []
        if not self.events:
            failures.append("no events were recorded")
        if len(self.events) != self.actions:
            failures.append(f"{self.actions} portal sign-ins and sign-outs made, {len(self.events)} events recorded")
        if self.lost:
            failures.append(f"{self.lost} deliveries lost")
        if self.duplicates:
            failures.append(f"{self.duplicates} duplicate deliveries")
        if self.unexpected:
            failures.append(f"{self.unexpected} rows reached tabs that must not show them")
        if any(tab.reloads for tab in self.tabs):
            failures.append("the server told a tab to reload its list (it thought rows were missed)")
        failures += [f"unexpected close: {close}" for close in self.closes]
        failures += [f"server log: {line}" for line in self.server_errors[:10]]
        return failures

    def table(self) -> str:
        per_server = ", ".join(
            f"{sum(tab.base_url == url for tab in self.tabs)} on :{url.rsplit(':', 1)[1]}" for url in self.urls
        )
        types = {t: sum(e[2] == t for e in self.events) for t in sorted({e[2] for e in self.events})}
        if self.latencies:
            p50, p99, top = (_percentile(self.latencies, 0.5), _percentile(self.latencies, 0.99), max(self.latencies))
            latency = f"{p50:.0f} / {p99:.0f} / {top:.0f} ms"
        else:
            latency = "-"
        rows = [
            ("duration", f"{self.duration:.0f} s (tabs open the whole time; longest idle stretch {self.longest_idle:.0f} s)"),
            ("server processes", f"{len(self.urls)} daphne, production settings, PostgreSQL + Redis"),
            ("sockets", f"{len(self.tabs)} ({per_server}; 4 staff, 2 agencies, 3 clients, 1 filtered)"),
            ("events", f"{len(self.events)} ({', '.join(f'{n} {t}' for t, n in types.items()) or 'none'})"),
            ("deliveries expected", str(self.expected)),
            ("deliveries received", str(self.received)),
            ("duplicates", str(self.duplicates)),
            ("lost", str(self.lost)),
            ("rows at tabs that must not show them", str(self.unexpected)),
            ("unexpected closes", str(len(self.closes))),
            ("server errors logged", str(len(self.server_errors))),
            ("latency p50 / p99 / max", latency),
        ]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"  {name:<{width}}  {value}" for name, value in rows)
