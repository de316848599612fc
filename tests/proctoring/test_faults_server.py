"""Faults against a real daphne (issue 9): a burst of connects at the start of an exam, an oversized message, a
database outage, and a Redis restart under the Celery pool. The server runs the scripted analyzer: these tests are
about the serving path, not the models.

PostgreSQL for the outage (a database that refuses connections and drops the ones it has); a Redis server of the
test's own for the restart (the shared one is left alone).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.browser import free_port, wait_for_port
from tests.conftest import service_missing
from tests.servers import (
    admin_sql,
    log_tail,
    manage,
    server_database,
    server_env,
    start_daphne,
    stop_process,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SCRIPTED = "tests.proctoring.fakes:scripted_analyzer"


class Server:
    def __init__(self, port: int, seed: dict, env: dict, log: Path, process: subprocess.Popen) -> None:
        self.port, self.seed, self.env, self.log, self.process = port, seed, env, log, process

    def url(self, attempt: int) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/proctor/{attempt}/"

    def headers(self, index: int) -> dict[str, str]:
        return {"Cookie": f"sessionid={self.seed['cookies'][index]}", "Origin": f"http://127.0.0.1:{self.port}"}

    def query(self, code: str) -> object:
        """One expression evaluated in the server's database (a manage.py subprocess), as JSON."""
        out = manage(self.env, "shell", "-c", f"import json; print(json.dumps({code}))")
        return json.loads(out.strip().splitlines()[-1])


@contextmanager
def daphne(tmp_path: Path, suffix: str, *, extra: int = 0, settings: dict | None = None, **env_overrides: str):
    log = tmp_path / f"{suffix}.log"
    with server_database(tmp_path, suffix) as database_url:
        analyzer = {} if env_overrides.pop("REAL_MODELS", None) else {"INFERENCE_ANALYZER": SCRIPTED}
        env = server_env(
            **analyzer,
            ALLOWED_HOSTS="127.0.0.1",
            DATABASE_URL=database_url,
            INFERENCE_WORKERS=env_overrides.pop("INFERENCE_WORKERS", "1"),
            PRIVATE_STORAGE_DIR=str(tmp_path / "private"),
            **env_overrides,
        )
        manage(env, "migrate", "--noinput", "-v", "0")
        arguments = ", ".join(f"{k}={v!r}" for k, v in (settings or {}).items())
        call = f"main({extra}{', ' if arguments else ''}{arguments})"
        out = manage(env, "shell", "-c", f"from tests.proctoring.faults_seed import main; {call}")
        seed = json.loads(out.strip().splitlines()[-1])
        port = free_port()
        process = start_daphne(env, port, log)
        try:
            wait_for_port(port, process, log)
            yield Server(port, seed, env, log, process)
        finally:
            stop_process(process)


async def first_event(ws, timeout: float = 10.0) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout=timeout))


async def close_code(server: Server, index: int) -> int | None:
    """Connect student `index` and return the code the server closes with (None if it sends READY instead)."""
    import websockets

    async with websockets.connect(server.url(server.seed["attempts"][index]), additional_headers=server.headers(index),
                                  open_timeout=10) as ws:  # fmt: skip
        try:
            event = await first_event(ws)
        except websockets.exceptions.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        assert event["event"] == "READY", event
        return None


# --- 4. A burst of connects ------------------------------------------------------------------------------------------

BURST = 200


def test_200_students_pressing_start_in_the_same_second_all_connect(tmp_path):
    # A burst of 200 simultaneous connects lost 61: the handshakes hit the 5 s handshake timeout while the
    # session-open database work queued, and sessions were still created for them. With the real model pack loading
    # in two workers at the same moment, this test fails on the code before issue 8 (every socket's database work
    # on one thread). On a 2-core Xeon it still lost 0-55 handshakes in most runs after that, all at one moment:
    # Channels looked each user up before the accept, on its one thread-sensitive thread. The user is looked up in
    # the consumer's first database call now, after the accept (examsite.websocket.UserOnFirstUse), and the workers
    # run below the server's CPU priority (INFERENCE_NICE): 0 lost in 10 runs there, the last READY after 2.8-4.5 s.
    import websockets

    with daphne(tmp_path, "burst", extra=BURST - 2, DB_POOL="true", REAL_MODELS="1", INFERENCE_WORKERS="2") as server:

        async def student(index: int) -> tuple[str, float]:
            started = time.perf_counter()
            try:
                async with websockets.connect(server.url(server.seed["attempts"][index]),
                                              additional_headers=server.headers(index), open_timeout=30,
                                              max_queue=None) as ws:  # fmt: skip
                    event = await first_event(ws, timeout=30)
                    return event["event"], time.perf_counter() - started
            except Exception as exc:  # noqa: BLE001 - every failure is one lost student, counted below
                return f"{type(exc).__name__}: {exc}", time.perf_counter() - started

        async def burst() -> list[tuple[str, float]]:
            return await asyncio.gather(*(student(i) for i in range(BURST)))

        outcomes = asyncio.run(burst())
        ready = [t for what, t in outcomes if what == "READY"]
        lost = [what for what, _ in outcomes if what != "READY"]
        assert not lost, (lost[:5], log_tail(server.log))
        assert max(ready) < 5.0  # within daphne's handshake timeout, READY included
        # One session per student, each with exactly one connect mark: no session for a refused handshake.
        counts = server.query(
            "[__import__('proctoring.models', fromlist=['x']).ProctoringSession.objects.count(), "
            "__import__('proctoring.models', fromlist=['x']).StreamEvent.objects.filter(kind='connected').count()]"
        )
        assert counts == [BURST, BURST]


# --- 8. A message over daphne's limit --------------------------------------------------------------------------------


def test_a_message_over_1_mib_is_closed_with_1009_as_the_protocol_says(tmp_path):
    # docs/protocol.md promised 1009 (message too big); daphne dropped the TCP connection, which clients see as 1006.
    import websockets

    with daphne(tmp_path, "oversize") as server:

        async def oversized() -> int | None:
            async with websockets.connect(server.url(server.seed["attempts"][0]), additional_headers=server.headers(0),
                                          open_timeout=10, max_size=None) as ws:  # fmt: skip
                assert (await first_event(ws))["event"] == "READY"
                await ws.send(os.urandom(2 * 1024 * 1024))
                try:
                    while True:
                        await asyncio.wait_for(ws.recv(), timeout=10)
                except websockets.exceptions.ConnectionClosed as closed:
                    return closed.rcvd.code if closed.rcvd else None

        assert asyncio.run(oversized()) == 1009
        assert asyncio.run(close_code(server, 1)) is None  # the server carries on: bob connects


def test_ctrl_c_stops_a_serving_daphne_and_its_live_workers_without_a_traceback(tmp_path):
    # Issue 12: stopping the dev server (`make serve`, Ctrl-C in its terminal) printed a traceback.
    import psutil
    import websockets

    from tests.proctoring.fakes import frame

    with daphne(tmp_path, "ctrl_c", INFERENCE_WORKERS="2") as server:

        async def stream_and_stop() -> list[int]:
            async with websockets.connect(server.url(server.seed["attempts"][0]), additional_headers=server.headers(0),
                                          open_timeout=10) as ws:  # fmt: skip
                assert (await first_event(ws))["event"] == "READY"
                await ws.send(frame("alice"))
                while (await first_event(ws, timeout=60))["event"] != "ATTENTION_UPDATE":
                    pass
                workers = [p.pid for p in psutil.Process(server.process.pid).children(recursive=True)]
                assert workers, log_tail(server.log)
                os.killpg(server.process.pid, signal.SIGINT)  # Ctrl-C, with a student still connected
                await asyncio.to_thread(server.process.wait, 30)
                return workers

        workers = asyncio.run(stream_and_stop())
        assert server.process.returncode == 0, log_tail(server.log)
        assert "Traceback" not in server.log.read_text(errors="replace"), log_tail(server.log)
        _gone, alive = psutil.wait_procs([psutil.Process(pid) for pid in workers if psutil.pid_exists(pid)], 5)
        assert alive == []


# --- 6. A database outage --------------------------------------------------------------------------------------------


@contextmanager
def outage(server: Server):
    """The server's PostgreSQL database refuses new connections and drops the ones it has, until the block ends."""
    url = server.env["DATABASE_URL"]
    name = url.rsplit("/", 1)[1]
    admin_sql(url, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    admin_sql(url, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
    try:
        yield
    finally:
        admin_sql(url, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def test_a_database_outage_holds_signals_refuses_connects_cleanly_and_the_stall_watchdog_survives(tmp_path):
    # A tab_hidden during an outage closed the socket with 1011 and was lost; a connect got a bare HTTP 500; a stall
    # that fell due during the outage killed the watchdog, so later stalls were never reported.
    if not os.getenv("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        service_missing("the outage test needs PostgreSQL: DATABASE_URL is not PostgreSQL")
    import websockets

    settings = {"frame_interval_ms": 500, "stall_after": 4}  # a stall falls due 2 s after the last frame
    with daphne(tmp_path, "outage", settings=settings, DB_POOL="true") as server:

        async def scenario() -> dict:
            seen: dict = {"events": []}
            async with websockets.connect(server.url(server.seed["attempts"][0]), additional_headers=server.headers(0),
                                          open_timeout=10) as ws:  # fmt: skip
                assert (await first_event(ws))["event"] == "READY"
                with outage(server):
                    await ws.send(json.dumps({"type": "signal", "signal": "tab_hidden"}))
                    await asyncio.sleep(0.5)
                    seen["connect_during_outage"] = await close_code(server, 1)
                    await asyncio.sleep(2.5)  # the stall falls due while the database is away
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline and "STREAM_STALLED" not in seen["events"]:
                    try:
                        seen["events"].append((await first_event(ws, timeout=1.0))["event"])
                    except TimeoutError:
                        pass
                await ws.send(json.dumps({"type": "ping"}))
                seen["events"].append((await first_event(ws))["event"])
            seen["connect_after"] = await close_code(server, 1)
            return seen

        seen = asyncio.run(scenario())
        assert seen["connect_during_outage"] == 4503, log_tail(server.log)
        assert seen["connect_after"] is None  # READY once the database is back
        assert "ERROR" not in seen["events"] and seen["events"][-2:] == ["STREAM_STALLED", "PONG"], seen
        marks = server.query(
            "[list(__import__('proctoring.models', fromlist=['x']).BrowserSignal.objects.values_list('kind', "
            "flat=True)), list(__import__('proctoring.models', fromlist=['x']).StreamEvent.objects.filter("
            "session__attempt__student__username='alice').values_list('kind', flat=True).order_by('id'))]"
        )
        assert marks[0] == ["tab_hidden"]  # held through the outage, not lost
        assert "stalled" in marks[1]


# --- 7. A Redis restart under the Celery pool ------------------------------------------------------------------------


@contextmanager
def own_redis(port: int, directory: Path):
    binary = shutil.which("redis-server")
    if binary is None:
        service_missing("redis-server is not installed")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir",
         str(directory)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def wait_for_redis(port: int) -> None:
    import redis

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            redis.Redis(port=port, socket_connect_timeout=0.5).ping()
            return
        except redis.exceptions.ConnectionError:
            time.sleep(0.1)
    raise AssertionError(f"redis-server on {port} did not start")


def test_after_a_redis_restart_the_first_reconnect_gets_ready_and_refusals_leave_no_marks(tmp_path):
    # In Celery mode, after a Redis restart the first reconnect failed with HTTP 500 on a stale pooled connection,
    # and refused handshakes still recorded "resumed" marks (which count toward the reconnect limit).
    import websockets

    redis_port = free_port()
    with own_redis(redis_port, tmp_path) as redis_process:
        wait_for_redis(redis_port)
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        with daphne(tmp_path, "redis", REDIS_URL=redis_url, INFERENCE_POOL="celery") as server:

            async def connect_twice() -> list[int | None]:
                return [await close_code(server, 0), await close_code(server, 0)]

            assert asyncio.run(connect_twice()) == [None, None]
            redis_process.kill()
            redis_process.wait()
            # While Redis is down: a clean refusal with 4503, and nothing recorded.
            assert asyncio.run(close_code(server, 0)) == 4503, log_tail(server.log)
            with own_redis(redis_port, tmp_path):
                wait_for_redis(redis_port)

                async def reconnect() -> dict:
                    url, headers = server.url(server.seed["attempts"][0]), server.headers(0)
                    async with websockets.connect(url, additional_headers=headers, open_timeout=10) as ws:
                        return await first_event(ws)

                event = asyncio.run(reconnect())
                assert event["event"] == "READY" and event["resumed"] is True, (event, log_tail(server.log))
                kinds = server.query(
                    "list(__import__('proctoring.models', fromlist=['x']).StreamEvent.objects.filter(kind__in="
                    "['connected', 'resumed']).values_list('kind', flat=True).order_by('id'))"
                )
                assert kinds == ["connected", "resumed", "resumed"]  # the refused connect left no mark
