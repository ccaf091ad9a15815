"""
The README's commands run as written in a fresh checkout: the demo setup (`make seed`,
what `make run` does before it serves) writes the demo's .env, then every command of the
README's "Ops commands" block, of the demo's commands below it, and its
simulate_portal_activity line exits 0, the simulator against `make run` itself.

The checkout is a copy of the files a clone of this working tree has (tracked and new,
nothing ignored: no .env, no var/), with the existing .venv linked in rather than
installed again. That keeps it fair: the .venv holds only the pinned packages of the same
requirements.lock (the project itself is not installed into it; manage.py imports it from
the checkout), and make finds its install stamp exactly as it would after `make install`.
Everything this is about (.env, the database, the commands) starts from nothing.
"""

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
# What a person's shell has; none of this run's DATABASE_URL, DEBUG, SECRET_KEY, settings module.
SHELL_ENV = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER"}}


def _fresh_checkout(target: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():  # not a file deleted in the working tree
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            # copy2 keeps modification times: make compares requirements.lock with the stamp.
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(ROOT / ".venv")
    return target


def _readme_commands(heading: str) -> list[list[str]]:
    """The commands of the first ```sh block after `heading` (or after a line containing it)."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(re.escape(heading) + r".*?```sh\n(.*?)```", readme, re.DOTALL).group(1)
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


def _run(checkout: Path, argv: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=checkout, env=env or SHELL_ENV, capture_output=True, text=True, timeout=180)


def _wait_for_port(port: int, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"make run did not serve on port {port}: {server.stdout.read()}") from None
            time.sleep(0.1)


def test_the_readme_commands_run_as_written_in_a_fresh_checkout(tmp_path):
    checkout = _fresh_checkout(tmp_path / "checkout")
    ops = _readme_commands("## Ops commands") + _readme_commands("The demo's own commands")
    simulate = _readme_commands("To watch the tab fill up")
    assert len(ops) >= 8 and simulate == [[".venv/bin/python", "manage.py", "simulate_portal_activity"]]

    setup = _run(checkout, ["make", "seed"])
    assert setup.returncode == 0, setup.stdout + setup.stderr
    env_file = (checkout / ".env").read_text()
    assert re.search(r"^DEBUG=1$", env_file, re.MULTILINE)
    assert len(re.search(r"^SECRET_KEY=(\S+)$", env_file, re.MULTILINE).group(1)) >= 50
    assert subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT).returncode == 0, ".env must be git-ignored"

    for argv in [command for command in ops if "simulate_portal_activity" not in command]:
        result = _run(checkout, argv)
        assert result.returncode == 0, (argv, result.stdout + result.stderr)

    # simulate_portal_activity against `make run` itself, on a port of this test's own
    # (the documented default, 8000, may be someone's demo), for two seconds, not sixty.
    port = free_port()
    server = subprocess.Popen(["make", "run", f"PORT={port}"], cwd=checkout, env=SHELL_ENV, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_port(port, server)
        for argv in [*simulate, *(command for command in ops if "simulate_portal_activity" in command)]:
            result = _run(checkout, [*argv, "--server", f"http://127.0.0.1:{port}", "--duration", "2", "--rate", "10"])
            assert result.returncode == 0, (argv, result.stdout + result.stderr)
            assert re.search(r"Done: [1-9]\d* logins", result.stdout), result.stdout
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # make, runserver and its autoreloader child
        server.wait(timeout=30)

    # What the simulation recorded through the real login pages verifies, and the .env stayed the same.
    verify = _run(checkout, ops[0])
    assert verify.returncode == 0 and "All chains intact" in verify.stdout, verify.stdout + verify.stderr
    assert (checkout / ".env").read_text() == env_file


def test_only_manage_py_reads_the_demo_env_and_the_environment_wins(tmp_path):
    checkout = _fresh_checkout(tmp_path / "checkout")
    assert _run(checkout, ["make", ".env"]).returncode == 0
    python = str(checkout / ".venv" / "bin" / "python")
    show = "from django.conf import settings; print(settings.DEBUG, settings.SECRET_KEY[:4])"

    demo = _run(checkout, [python, "manage.py", "shell", "-c", show])
    key = re.search(r"^SECRET_KEY=(\S+)$", (checkout / ".env").read_text(), re.MULTILINE).group(1)
    assert demo.stdout.splitlines()[-1] == f"True {key[:4]}", demo.stderr

    # A variable set in the environment, even to nothing, is never overridden.
    production = _run(checkout, [python, "manage.py", "check"], env={**SHELL_ENV, "DEBUG": "", "SECRET_KEY": ""})
    assert production.returncode != 0 and "SECRET_KEY must be set" in production.stderr

    # daphne's entry point (agencyhandy.asgi) does not read it: production stays production.
    asgi = _run(checkout, [python, "-c", "import agencyhandy.asgi"])
    assert asgi.returncode != 0 and "SECRET_KEY must be set" in asgi.stderr

    # Neither do the test settings.
    tests = _run(checkout, [python, "manage.py", "shell", "-c", show],
                 env={**SHELL_ENV, "DJANGO_SETTINGS_MODULE": "agencyhandy.settings_test"})
    assert tests.stdout.splitlines()[-1] == "False test", tests.stderr
