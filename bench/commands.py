"""
Measurements #7 and #8: the ops commands over the whole table (or, for
`--since-anchor`, what is new since an anchor), each in a process of its own, timed from
start to exit with the process's peak resident memory (wait4).

#7 runs `manage.py export_activity_log --format csv --output FILE` beside psql's
`\\copy (the same query) to stdout csv` in the same run.
"""

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import ROOT
from bench.database import conninfo

EXPORT_COMMAND = "export_activity_log"
# What a CSV export of the whole log reads: every column, oldest first. psql runs this
# query; it matches what the export command reads when given no filters.
EXPORT_QUERY = (
    "SELECT id, occurred_at, agency_id, client_id, user_id, email, event_type, ip, user_agent, "
    "browser, os, session_ref, reason, seq, prev_hash, hash "
    "FROM activitylog_authevent ORDER BY occurred_at, id"
)


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss_mb: float
    returncode: int
    output: str

    def rate(self, items: int) -> float:
        return items / self.seconds


def run_measured(args: list[str], *, stdout=None) -> Run:
    """
    Run a command to its end: its wall time and its own peak RSS. Output goes to `stdout`
    (a file) or, with stderr, to a log kept for errors.

    The peak is the command's VmHWM, read from /proc every few milliseconds while it runs.
    wait4's ru_maxrss cannot be used: Linux carries the forking parent's high-water mark
    over exec into the child's, so every command measured from this (large) process
    showed at least this process's size, psql included.
    """
    with tempfile.TemporaryFile() as log:
        started = time.monotonic()
        process = subprocess.Popen(args, cwd=ROOT, stdout=stdout or log, stderr=log)
        peak_kb = 0
        while True:
            pid, status, _ = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            peak_kb = max(peak_kb, _high_water_kb(process.pid))
            time.sleep(0.005)
        seconds = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        log.seek(0)
        output = log.read()[-2000:].decode(errors="replace")
    return Run(seconds, peak_kb / 1024, process.returncode, output)


def _high_water_kb(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM), or 0 once it has exited."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def _manage(*args: str) -> list[str]:
    return [sys.executable, "manage.py", *args]


def verify_all(*, write_anchor: Path) -> Run:
    """#8: verify_activity_log over every chain, writing the anchor that verify_since starts from."""
    return _verify("--write-anchor", str(write_anchor))


def verify_since(anchor: Path) -> Run:
    """#8: verify_activity_log --since-anchor: only the events added since `anchor`."""
    return _verify("--since-anchor", str(anchor))


def _verify(*args: str) -> Run:
    run = run_measured(_manage("verify_activity_log", *args))
    if run.returncode != 0:
        raise RuntimeError(f"verify_activity_log failed (exit {run.returncode}): {run.output}")
    return run


def export_csv(directory: Path) -> Run:
    """#7, ours: the export command writing CSV to a file."""
    target = directory / "export.csv"
    run = run_measured(_manage(EXPORT_COMMAND, "--format", "csv", "--output", str(target)))
    target.unlink(missing_ok=True)
    if run.returncode != 0:
        raise RuntimeError(f"{EXPORT_COMMAND} failed (exit {run.returncode}): {run.output}")
    return run


def psql_copy(directory: Path) -> Run:
    """#7, the yardstick: psql's \\copy of the same query, to a file on the same disk."""
    target = directory / "psql.csv"
    with open(target, "wb") as out:
        run = run_measured(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", conninfo(), "-c",
             f"\\copy ({EXPORT_QUERY}) to stdout csv header"],
            stdout=out,
        )
    target.unlink(missing_ok=True)
    if run.returncode != 0:
        raise RuntimeError(f"psql \\copy failed (exit {run.returncode}): {run.output}")
    return run


def scratch_directory() -> tempfile.TemporaryDirectory:
    (ROOT / "var").mkdir(exist_ok=True)  # a fresh checkout has none
    return tempfile.TemporaryDirectory(prefix="bench-export-", dir=ROOT / "var")
