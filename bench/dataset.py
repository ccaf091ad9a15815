"""
What the benchmark dataset holds: how many events each client has, the names and emails
of its people, the browsers they use, and the probe clients the measurements look at.

builder.py builds it: people.py writes the people, loader.py the events, and events.py
generates each client's history.
"""

import random
from dataclasses import dataclass, field

from bench.scale import Scale
from clients.models import Client
from demo.data import USER_AGENTS as DEMO_USER_AGENTS

PASSWORD = "bench-password"
TIME_ZONES = ["America/New_York", "Europe/Berlin", "Asia/Tokyo", "UTC", "Australia/Sydney", "America/Los_Angeles"]
NAME_WORDS = (
    ["Northwind", "Blue Harbor", "Pixel", "Summit", "Greenleaf", "Old Mill", "Brightside", "Copper",
     "Silver Oak", "Redwood", "Lakeside", "Granite", "Maple", "Harbor", "Cedar", "Orchid", "Falcon",
     "Atlas", "Beacon", "Evergreen"],
    ["Traders", "Dental", "Studio", "Legal", "Organics", "Bakery", "Realty", "Logistics", "Fitness",
     "Consulting", "Motors", "Clinic", "Media", "Foods", "Labs"],
)
# The demo's browsers, and one more.
USER_AGENTS = [
    *DEMO_USER_AGENTS,
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
]
WORK_CLIENTS = 16  # one per concurrent writer of measurement #4
ROOT_EMAIL = "root@bench-staff.test"


@dataclass
class Probe:
    """A client the measurements look at, with its size in the current dataset."""

    client_id: int
    events: int


@dataclass
class Dataset:
    """What the measurements need to know about the dataset in the database."""

    scale: str
    total_events: int
    stages_done: int
    whale: Probe
    big: Probe
    small: Probe
    built_at: str
    growth: list[dict] = field(default_factory=list)

    @property
    def probes(self) -> dict[str, Probe]:
        return {"1 k": self.small, "100 k": self.big, "1 M": self.whale}


# Sizes ---------------------------------------------------------------------------------------


def client_sizes(scale: Scale) -> list[int]:
    """Events per client: the whale, the 100 k clients, the 1 k client, then a long tail."""
    rng = random.Random(scale.seed)
    fixed = [scale.whale_events] + [scale.big_events] * scale.big_clients + [scale.small_events]
    rest_count = scale.clients - len(fixed)
    rest_total = scale.total_events - sum(fixed)
    weights = [rng.lognormvariate(0, 1.0) for _ in range(rest_count)]
    total_weight = sum(weights)
    sizes = [int(w / total_weight * rest_total) for w in weights]
    for i in range(rest_total - sum(sizes)):
        sizes[i % rest_count] += 1
    return fixed + sizes


def events_at_stage(size: int, stage_total: int, scale: Scale) -> int:
    """How much of a client's history exists once the table holds `stage_total` events."""
    return size if stage_total >= scale.total_events else size * stage_total // scale.total_events


def probe_indexes(scale: Scale) -> dict[str, int]:
    """Which clients (by index in client_sizes) are the whale and the 100 k and 1 k probes."""
    return {"whale": 0, "big": 1, "small": 1 + scale.big_clients}


# Names ---------------------------------------------------------------------------------------


def client_email(index: int) -> str:
    return f"client-{index:05d}@bench-clients.test"


def manager_email(agency_index: int) -> str:
    return f"manager-{agency_index:03d}@bench-staff.test"


def work_email(name: str) -> str:
    return f"{name}@bench-work.test"


def writer_emails() -> list[str]:
    return [work_email(f"writer-{k:02d}") for k in range(WORK_CLIENTS)]


def client_ids(count: int) -> list[int]:
    """The ids of the first `count` dataset clients, in the order of client_sizes."""
    by_email = dict(
        Client.objects.filter(email__endswith="@bench-clients.test").values_list("email", "pk")
    )
    return [by_email[client_email(i)] for i in range(count)]
