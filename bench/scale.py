"""The sizes of one benchmark run: the full dataset of issue 5, or 1/1000 of it."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    name: str
    total_events: int
    clients: int
    agencies: int
    whale_events: int
    big_events: int  # the 100 k probe client (and a few more of that size)
    big_clients: int
    small_events: int  # the 1 k probe client
    growth_stages: tuple[int, ...]  # total events after each build stage
    page_iterations: int
    admin_iterations: int
    offset_iterations: int
    load_older_depth: int
    writers: tuple[int, ...]
    write_seconds: float
    login_iterations: int
    sockets: tuple[int, ...]
    live_events: int
    live_interval: float

    @property
    def seed(self) -> int:
        return 20261126


FULL = Scale(
    name="full",
    total_events=10_000_000,
    clients=5_000,
    agencies=50,
    whale_events=1_000_000,
    big_events=100_000,
    big_clients=5,
    small_events=1_000,
    growth_stages=(1_000_000, 5_000_000, 10_000_000),
    page_iterations=200,
    admin_iterations=20,
    offset_iterations=5,
    load_older_depth=500_000,
    writers=(1, 4, 16),
    write_seconds=5.0,
    login_iterations=300,
    sockets=(1, 100, 1_000),
    live_events=40,
    live_interval=0.15,
)

SMOKE = Scale(
    name="smoke",
    total_events=10_000,
    clients=50,
    agencies=5,
    whale_events=1_000,
    big_events=100,
    big_clients=5,
    small_events=10,
    growth_stages=(1_000, 5_000, 10_000),
    page_iterations=10,
    admin_iterations=3,
    offset_iterations=2,
    load_older_depth=500,
    writers=(1, 4),
    write_seconds=0.5,
    login_iterations=10,
    sockets=(1, 10),
    live_events=3,
    live_interval=0.05,
)
