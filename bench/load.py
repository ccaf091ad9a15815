"""
Measurement #10: the Activity Log tab under load. Staff of several agencies open the tabs
of clients of every size, the whale's included, at a steady rate (bench/loadgen.py, in a
process of its own) against one daphne process, then against two, started as #6 starts
them (tests/servers.py: production settings, DEBUG off, Redis). The rate steps up until
the p99 passes 100 ms; the highest step held is the figure.

Where the CPU went during each step is read from /proc: the daphne processes, the
PostgreSQL backends of the benchmark's database, the generator, and the whole machine
(the rest is Redis, the bench's own process and whatever else runs here).
"""

import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass

from django.db import connection

from bench import ROOT, loadgen
from bench.cpu import cpu_seconds, machine_busy_seconds, server_pid
from bench.dataset import Dataset, client_ids, manager_email, probe_indexes
from bench.delivery import staff_session
from bench.processes import CONTEXT
from bench.scale import Scale
from bench.stats import Samples
from clients.models import Client, User
from tests.servers import asgi_server

P99_LIMIT_MS = 100.0
# A generator busy this much of one core may be sending late: its figures are its own limit.
SATURATED = 0.9
TAIL_CLIENTS = 3  # clients of the long tail, beside the three probes
SERVER_LOGS = ROOT / "var"


@dataclass(frozen=True)
class Steps:
    """
    How #10 steps the rate. Kept out of Scale on purpose: the dataset's marker holds the
    whole Scale, and a new field there would make the next run rebuild a 10 M-event dataset.
    """

    start_rate: float
    seconds: float
    warmup_seconds: float
    max_steps: int
    refinements: int


STEPS = {
    "full": Steps(start_rate=10.0, seconds=15.0, warmup_seconds=5.0, max_steps=12, refinements=2),
    "smoke": Steps(start_rate=10.0, seconds=1.5, warmup_seconds=0.5, max_steps=3, refinements=1),
}


@dataclass(frozen=True)
class Step:
    """One fixed-rate step, as the generator measured it, with the CPU seconds spent meanwhile."""

    rate: float
    latencies: Samples
    by_kind: dict[str, Samples]
    statuses: dict[int, int]
    cpu: dict[str, float]  # CPU seconds per second of the step, by who spent them ("daphne 1", ... each process)
    generator_late_ms: float

    @property
    def errors(self) -> int:
        """Answers that were not 2xx, and requests with no answer by the step's end."""
        return sum(count for status, count in self.statuses.items() if not 200 <= status < 300)

    @property
    def held(self) -> bool:
        return self.errors == 0 and self.latencies.p99 <= P99_LIMIT_MS


@dataclass(frozen=True)
class Ramp:
    processes: int
    steps: list[Step]

    @property
    def held(self) -> Step | None:
        """The highest rate held, or None when not even the first step was."""
        return rate_held(self.steps)

    @property
    def capped(self) -> bool:
        """True when every step was held: the rate held is a floor, not the limit."""
        return all(step.held for step in self.steps)


def rate_held(steps: list[Step]) -> Step | None:
    held = [step for step in steps if step.held]
    return max(held, key=lambda step: step.rate) if held else None


def ramp_rates(measure: Callable[[float], bool], *, start: float, factor: float, max_steps: int,
               refinements: int) -> list[float]:
    """
    The rates tried, in order, `max_steps` at the most: up by `factor` from `start` until
    a step is not held, then halfway between the best held and the lowest not held,
    `refinements` times. When the first step is not held, halved until one is.
    `measure(rate)` runs a step and says whether it was held.
    """
    tried: list[float] = []
    held, failed = 0.0, None
    rate = float(start)
    while len(tried) < max_steps and failed is None:
        tried.append(rate)
        if measure(rate):
            held = rate
            rate = round(rate * factor, 1)
        else:
            failed = rate
    while failed is not None and len(tried) < max_steps and not (held and refinements == 0):
        rate = round((held + failed) / 2, 1)
        if rate in tried or rate < 1:
            break
        tried.append(rate)
        if held:  # a step between a held rate and a failed one; halving down to a first held is free
            refinements -= 1
        if measure(rate):
            held = rate
        else:
            failed = rate
    return tried


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def tab_under_load(dataset: Dataset, scale: Scale, *, log: Callable[[str], None] = _stderr) -> list[Ramp]:
    """#10 with one daphne process, then two, in the same run; the servers' logs go to var/bench-load-N.log."""
    targets = _targets(dataset, scale)
    SERVER_LOGS.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        urls = [stack.enter_context(asgi_server(log_path=SERVER_LOGS / f"bench-load-{n}.log")) for n in (1, 2)]
        return [_ramp(urls[:processes], targets, STEPS[scale.name], log) for processes in (1, 2)]


def _targets(dataset: Dataset, scale: Scale) -> list[loadgen.Target]:
    """The probes (1 k, 100 k, the whale) and a few of the long tail, each with its agency's manager."""
    ids = [probe.client_id for probe in dataset.probes.values()]
    tail = probe_indexes(scale)["small"] + 1  # client_sizes' order: the probes first, then the tail
    ids += client_ids(tail + TAIL_CLIENTS)[tail:]
    targets = []
    for client in Client.objects.select_related("agency").filter(pk__in=ids).order_by("pk"):
        manager = User.objects.get(email=manager_email(int(client.agency.slug.removeprefix("bench-"))))
        portal_email = User.objects.filter(client=client).order_by("pk").values_list("email", flat=True).first()
        targets.append(loadgen.Target(client.pk, staff_session(manager), portal_email or client.email))
    return targets


def _ramp(urls: list[str], targets: list[loadgen.Target], plan: Steps, log: Callable[[str], None]) -> Ramp:
    ours, theirs = CONTEXT.Pipe()
    process = CONTEXT.Process(target=loadgen.main, args=(urls, targets, theirs))
    process.start()
    watched = _Watched(urls, process.pid)
    steps: list[Step] = []
    try:
        _receive(ours, "ready", timeout=120)
        _send_step(ours, plan.start_rate, plan.warmup_seconds, seed=0)  # warm up, not counted
        _receive(ours, "step", timeout=plan.warmup_seconds + 120)

        def measure(rate: float) -> bool:
            before = watched.sample()
            _send_step(ours, rate, plan.seconds, seed=len(steps) + 1)
            result = _receive(ours, "step", timeout=plan.seconds + 120)
            steps.append(_step(result, watched.since(before)))
            log(f"  {len(urls)} process{'es' if len(urls) > 1 else ''}, {_step_summary(steps[-1])}")
            return steps[-1].held

        ramp_rates(measure, start=plan.start_rate, factor=1.5, max_steps=plan.max_steps,
                   refinements=plan.refinements)
        ours.send(("stop",))
    finally:
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
    return Ramp(len(urls), steps)


def _step_summary(step: Step) -> str:
    cpu = ", ".join(f"{who} {seconds:.2f}" for who, seconds in step.cpu.items())
    return (f"{step.rate:g} req/s: p50 {step.latencies.p50:.1f} ms, p99 {step.latencies.p99:.1f} ms, "
            f"{step.errors} errors; sent ≤ {step.generator_late_ms:.0f} ms late; CPU s/s {cpu}")


def _send_step(pipe, rate: float, seconds: float, *, seed: int) -> None:
    # Answers still missing this long after the schedule ends count as errors.
    pipe.send(("step", rate, seconds, seed, max(1.0, seconds / 2)))


def _receive(pipe, expected: str, *, timeout: float):
    if not pipe.poll(timeout):
        raise RuntimeError(f"The load generator did not answer within {timeout:.0f} s")
    status, *detail = pipe.recv()
    if status != expected:
        raise RuntimeError(f"The load generator failed: {detail}")
    return detail[0]


def _step(result: loadgen.StepResult, cpu: dict[str, float]) -> Step:
    every = [ms for values in result.latencies.values() for ms in values]
    return Step(
        rate=result.rate, latencies=Samples(every),
        by_kind={kind: Samples(values) for kind, values in result.latencies.items()},
        statuses=result.statuses, cpu=cpu, generator_late_ms=result.late_sends_ms,
    )


class _Watched:
    """The processes whose CPU time #10 reports, read from /proc before and after each step."""

    def __init__(self, urls: list[str], generator_pid: int) -> None:
        self.servers = [server_pid(url) for url in urls]
        self.generator = generator_pid

    def sample(self) -> dict:
        return {
            "at": time.monotonic(), "machine": machine_busy_seconds(),
            "daphne": [cpu_seconds(pid) for pid in self.servers],
            "generator": cpu_seconds(self.generator),
            "postgres": {pid: cpu_seconds(pid) for pid in _backend_pids()},
        }

    def since(self, before: dict) -> dict[str, float]:
        """CPU seconds per second since `before`, by who spent them."""
        after = self.sample()
        wall = after["at"] - before["at"]
        # A backend that was not there before (a new pooled connection) counts in full.
        postgres = sum(seconds - before["postgres"].get(pid, 0.0) for pid, seconds in after["postgres"].items())
        servers = [(b - a) / wall for a, b in zip(before["daphne"], after["daphne"], strict=True)]
        return {
            "daphne": sum(servers),
            **{f"daphne {n}": seconds for n, seconds in enumerate(servers, start=1)},
            "PostgreSQL": postgres / wall,
            "generator": (after["generator"] - before["generator"]) / wall,
            "machine": (after["machine"] - before["machine"]) / wall,
        }


def _backend_pids() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [row[0] for row in cursor.fetchall()]
