"""A measured command's peak memory is its own, not the measuring process's."""

import sys

from bench.commands import run_measured


def test_a_commands_peak_rss_is_its_own_not_the_large_parents():
    parent_ballast = bytearray(400 * 1024 * 1024)  # the bench process is large when it measures
    small = run_measured([sys.executable, "-c", "pass"])
    large = run_measured([sys.executable, "-c", "x = bytearray(120 * 1024 * 1024); import time; time.sleep(0.2)"])
    assert small.returncode == 0 and large.returncode == 0
    assert small.peak_rss_mb < 100, small
    assert 120 <= large.peak_rss_mb < 300, large
    del parent_ballast
