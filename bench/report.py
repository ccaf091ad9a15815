"""The results as a markdown table with the goals of issue 5, and the machine they ran on."""

import os
import platform
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import django
import redis
from django.conf import settings

from bench.database import server_versions
from bench.stats import Samples

BEGIN = "<!-- bench:begin (written by `make bench`; edit outside these markers) -->"
END = "<!-- bench:end -->"


@dataclass
class Line:
    number: str
    measurement: str
    samples: Samples | None = None
    result: str = ""
    goal: str = ""
    met: bool | None = None

    def cells(self) -> list[str]:
        s = self.samples
        timing = [_ms(s.p50), _ms(s.p95), _ms(s.p99)] if s else ["", "", ""]
        met = {True: "yes", False: "**no**", None: ""}[self.met]
        return [self.number, self.measurement, *timing, self.result, self.goal, met]


def _ms(value: float) -> str:
    return f"{value:,.1f} ms" if value < 100 else f"{value:,.0f} ms"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×"


def table(lines: list[Line]) -> str:
    head = ["#", "measurement", "median", "p95", "p99", "result", "goal", "met"]
    rows = [head, ["---"] * len(head), *(line.cells() for line in lines)]
    return "\n".join("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows)


def machine() -> list[str]:
    cpu = "unknown CPU"
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                cpu = text.split(":", 1)[1].strip()
                break
        mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        memory = f"{mem_kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, AttributeError):
        memory = "unknown RAM"
    db = server_versions()
    redis_version = redis.Redis.from_url(settings.REDIS_URL).info("server")["redis_version"]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"- **Machine:** {cpu}, {os.cpu_count()} cores, {memory}; {platform.system()} {platform.release()}",
        f"- **Software:** PostgreSQL {db['postgres']} (shared_buffers {db['shared_buffers']}, "
        f"work_mem {db['work_mem']}, stock settings), Redis {redis_version}, "
        f"Python {platform.python_version()}, Django {django.get_version()}",
        f"- **Load average when the run ended:** {load} (the machine is shared; medians and ratios "
        "are the figures to read)",
    ]


def document(*, scale: str, lines: list[Line], dataset: list[str], notes: list[str], seconds: float) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        f"Measured {when} by `make bench` (scale: {scale}) in {seconds / 60:.0f} min, including any dataset build.",
        "",
        *machine(),
        *dataset,
        "",
        table(lines),
    ]
    if notes:
        parts += ["", *(f"- {note}" for note in notes)]
    return "\n".join(parts)


def save(path: Path, generated: str) -> None:
    """Replace the generated block of `path`, keeping what is written around it."""
    block = f"{BEGIN}\n{generated}\n{END}"
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN in text and END in text:
        before, rest = text.split(BEGIN, 1)
        after = rest.split(END, 1)[1]
        text = before + block + after
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
