"""Start real ASGI server processes (daphne, via runserver) against the test database."""

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from tests.subprocesses import app_database_url

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_available(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@contextmanager
def asgi_server(*, redis_url: str | None = None, log_path: Path | None = None, port: int | None = None):
    """Yield the base URL of a fresh server process; stop it afterwards."""
    port = port or free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "agencyhandy.settings_test", "DATABASE_URL": app_database_url()}
    # Explicit, not removed: manage.py would fill an unset DEBUG from a demo .env.
    env["DEBUG"] = "0"
    env.pop("REDIS_URL", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # the browser tests set it for themselves only
    if redis_url:
        env["REDIS_URL"] = redis_url
    log = open(log_path or os.devnull, "a")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        # --insecure serves static files with DEBUG off, as a proxy would in production.
        [sys.executable, "manage.py", "runserver", "--noreload", "--insecure", "--skip-checks", f"127.0.0.1:{port}"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"The ASGI server exited with {process.returncode}; see {log_path}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("The ASGI server did not start within 30 s") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
