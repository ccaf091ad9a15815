"""
CPU time from /proc, for the measurements that say where the time went (#6, #10): a
process's own user and system seconds, a daphne server's process, the whole machine's.
"""

import os
from pathlib import Path
from urllib.parse import urlsplit

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def server_pid(url: str) -> int:
    """The daphne process this run started for `url`: a child of ours, with the port on its command line."""
    port = str(urlsplit(url).port)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            parent = int(stat_fields(int(entry.name))[1])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        if parent == os.getpid() and any(b"daphne" in arg for arg in argv) and port.encode() in argv:
            return int(entry.name)
    raise RuntimeError(f"No daphne process of ours listens on port {port}")


def stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat from the field after the command name (which may hold spaces): state, ppid, ..."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2:].split()


def cpu_seconds(pid: int) -> float:
    try:
        fields = stat_fields(pid)
    except OSError:
        return 0.0  # ended
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def machine_busy_seconds() -> float:
    """CPU seconds spent by anything on the machine, all cores together: all but idle and iowait."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / CLOCK_TICKS
