"""`python -m bench` answers a bad argument with one line and exit 2, before touching any database."""

import os
import subprocess
import sys

import pytest

from bench import ROOT

# Nothing listens there: a run that got past its arguments would fail on these instead.
NOWHERE = {"BENCH_DATABASE_URL": "postgres://postgres@127.0.0.1:9/nowhere", "BENCH_REDIS_URL": "redis://127.0.0.1:9/0"}


@pytest.mark.parametrize("argv", [
    ["--bogus"], ["--smoke", "stray"], ["--smoke=yes"], ["--rebuild", "two\nlines"], ["--only", "99"], ["--only", ","],
    ["--only", "1,x"],
])
def test_a_bad_argument_is_one_line_on_stderr_and_exit_2(argv):
    result = subprocess.run([sys.executable, "-m", "bench", *argv], cwd=ROOT, env={**os.environ, **NOWHERE},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("python -m bench: error: ") and "(see --help)" in result.stderr
