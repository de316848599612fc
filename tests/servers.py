"""Real servers in subprocesses, for tests that need more than pytest-django's in-process database: daphne, a Celery
inference worker, and a database of their own that several processes share.

The test process never opens that database through its own Django settings (pytest-django guards those): it runs
`manage.py` subprocesses with the servers' environment and reads their JSON output instead.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tests.conftest import service_missing

ROOT = Path(__file__).resolve().parent.parent
# What a server subprocess must not inherit from the test run: each test says which database, Redis and pool it uses.
NOT_INHERITED = ("DATABASE_URL", "REDIS_URL", "INFERENCE_POOL", "INFERENCE_ANALYZER", "PYTEST_CURRENT_TEST")


def postgres_database(url: str, suffix: str) -> tuple[str, str]:
    """A database of our own next to DATABASE_URL's (which pytest-django's own test database sits beside)."""
    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'postgres'}_{suffix}"
    return name, urlunsplit(parts._replace(path=f"/{name}"))


def admin_sql(url: str, sql: str) -> None:
    """Run one statement (CREATE or DROP DATABASE) on the server of `url`, outside any transaction."""
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql)


@contextmanager
def server_database(directory: Path, suffix: str) -> Iterator[str]:
    """The DATABASE_URL for server subprocesses: a fresh PostgreSQL database `<name>_<suffix>` next to DATABASE_URL's
    when that is PostgreSQL (dropped afterwards), else a SQLite file in `directory`."""
    url = os.getenv("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        yield f"sqlite:///{directory / f'{suffix}.sqlite3'}"
        return
    name, own = postgres_database(url, suffix)
    try:
        admin_sql(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin_sql(url, f'CREATE DATABASE "{name}"')
    except Exception as exc:  # noqa: BLE001 - any connection failure means the service is missing
        service_missing(f"PostgreSQL at DATABASE_URL is not usable: {exc}")
    try:
        yield own
    finally:
        admin_sql(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def require_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means the service is missing
        service_missing(f"Redis is not reachable at {url} ({exc})")


def server_env(**overrides: str) -> dict[str, str]:
    """The environment of a server subprocess: ours, minus what each test must choose, plus `overrides`."""
    env = {key: value for key, value in os.environ.items() if key not in NOT_INHERITED}
    env.update({"DJANGO_SETTINGS_MODULE": "examsite.settings", **overrides})
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    """Run `manage.py <args>` in the servers' environment; return its stdout, or fail with its stderr."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"manage.py {' '.join(args)} exited with {done.returncode}:\n{done.stderr[-3000:]}"
    return done.stdout


def start_daphne(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    """daphne as `make serve` runs it, in a process group of its own (as a terminal would start it: Ctrl-C is a
    SIGINT to the whole group)."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "examsite.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def start_inference_worker(env: dict[str, str], log: Path, *, concurrency: int = 1) -> subprocess.Popen:
    """The documented inference worker (prefork, prefetch 1) on the `inference` queue of env's REDIS_URL, logging
    each task it receives (INFO). Gossip, mingle and heartbeats are off: one worker needs none, and they slow its
    start."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "examsite", "worker", "-Q", "inference"),
                *("--pool", "prefork", "--concurrency", str(concurrency), "--prefetch-multiplier", "1"),
                *("--without-gossip", "--without-mingle", "--without-heartbeat"),
                *("-n", f"test-{uuid.uuid4().hex[:8]}@%h", "--loglevel", "INFO"),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop_process(proc: subprocess.Popen, *, timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL after `timeout`; children first noted, so that a killed Celery master leaves no prefork
    child behind."""
    import psutil

    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    _gone, alive = psutil.wait_procs(children, timeout=5)
    for child in alive:
        child.kill()


def log_tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"
