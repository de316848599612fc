"""A real daphne on PostgreSQL with its connection pool (DB_POOL, on by default in servers): the consumer's database
calls hand their connections back. Twenty connects that each run the session-open queries, through a pool of at
most 3 connections, all get their answer, and the server holds no more connections than the pool allows.

(`make test` runs pytest itself with DB_POOL=false: its per-test event loops strand pooled connections. This test
runs the server as production does.)
"""

from __future__ import annotations

import asyncio
import os

import pytest

from tests.browser import free_port, wait_for_port
from tests.conftest import service_missing
from tests.servers import log_tail, manage, server_database, server_env, start_daphne, stop_process

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

SEED = (
    "from django.test import Client; from tests.factories import StudentFactory; "
    "c = Client(); c.force_login(StudentFactory(username='alice')); print(c.cookies['sessionid'].value)"
)


def test_a_pooled_server_answers_every_connect_and_keeps_within_its_pool(tmp_path):
    if not os.getenv("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        service_missing("the connection pool is PostgreSQL's: DATABASE_URL is not PostgreSQL")
    import psycopg
    import websockets

    log = tmp_path / "daphne.log"
    with server_database(tmp_path, "dbpool") as database_url:
        env = server_env(
            DEBUG="true", ALLOWED_HOSTS="127.0.0.1", DATABASE_URL=database_url, DB_POOL="true", DB_POOL_MAX="3"
        )
        manage(env, "migrate", "--noinput", "-v", "0")
        cookie = manage(env, "shell", "-c", SEED).strip().splitlines()[-1]
        port = free_port()
        server = start_daphne(env, port, log)
        try:
            wait_for_port(port, server, log)

            async def connect() -> int | None:
                url = f"ws://127.0.0.1:{port}/ws/proctor/99999999/"
                headers = {"Cookie": f"sessionid={cookie}", "Origin": f"http://127.0.0.1:{port}"}
                async with websockets.connect(url, additional_headers=headers, open_timeout=20) as ws:
                    try:
                        await asyncio.wait_for(ws.recv(), timeout=20)
                    except websockets.exceptions.ConnectionClosed as closed:
                        return closed.rcvd.code if closed.rcvd else None
                return None

            async def twenty() -> list[int | None]:
                return [await connect() for _ in range(20)]

            assert asyncio.run(twenty()) == [4404] * 20, log_tail(log)
            name = database_url.rsplit("/", 1)[1]
            with psycopg.connect(database_url.rsplit("/", 1)[0] + "/postgres") as admin:
                (held,) = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)).fetchone()
            assert held <= 3
        finally:
            stop_process(server)
