"""ASGI middleware for the WebSocket stack."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from channels.auth import AuthMiddleware, get_user
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.utils import await_many_dispatch
from django.db import DatabaseError
from django.utils.functional import SimpleLazyObject
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

# "Try again later" (RFC 6455 has 1013 for it, but daphne lets an application close only with 1000 or 3000-4999);
# docs/protocol.md lists it with the refusal codes.
TRY_AGAIN_LATER = 4503
# What a channel layer on Redis raises when Redis restarts or is gone (redis-py's errors are not OSErrors).
LAYER_ERRORS = (OSError, RedisConnectionError, RedisTimeoutError)
LAYER_RETRY_S = 1.0


class SurvivesLayerOutage:
    """A consumer whose socket outlives a channel-layer outage (a Redis restart).

    Channels' consumer polls the channel layer for the socket's group messages in the same loop as the client's
    messages, and the first poll that fails ends the consumer: every student's socket closed the moment Redis went
    away, even though the local pool and the database needed no Redis to go on checking frames. This is Channels'
    AsyncConsumer.__call__ with one change: the poll waits out the outage and then resumes, on a fresh connection.
    """

    # Channels' AsyncConsumer provides these; the mixin comes first in the consumer's bases.
    channel_layer_alias: str
    channel_layer: Any
    channel_name: str
    dispatch: Callable[[dict[str, Any]], Awaitable[None]]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.base_send = send
        sources = [receive]
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            self.channel_receive = self._layer_receive
            sources.append(self.channel_receive)
        try:
            await await_many_dispatch(sources, self.dispatch)
        except StopConsumer:
            pass

    async def _layer_receive(self) -> dict[str, Any]:
        failing = False
        while True:
            try:
                message = await self.channel_layer.receive(self.channel_name)
            except LAYER_ERRORS:
                if not failing:
                    log.warning("websocket: the channel layer is unavailable; %s waits for it", self.channel_name)
                    failing = True
                await asyncio.sleep(LAYER_RETRY_S)
                continue
            if failing:
                log.info("websocket: the channel layer is back for %s", self.channel_name)
            received: dict[str, Any] = message
            return received


class ClosesItsOwnConnections:
    """A consumer that handles each message without first hopping to Channels' thread-sensitive thread.

    Channels (4.2 and later) awaits `close_old_connections` on its one thread-sensitive thread before every message
    a consumer handles. These consumers never query there: every query runs in a DatabaseSyncToAsync call
    (`proctoring.consumers.db_call`, `database_sync_to_async`), which closes its connection before and after by
    itself. The hop per message, a frame's included, was 5% of the server's GIL time at 150 students (py-spy, issue
    8), and queued every socket's messages behind that one thread. This is Channels' AsyncConsumer.dispatch without
    the hop.
    """

    async def dispatch(self, message: dict[str, Any]) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)


class UserOnFirstUse(AuthMiddleware):
    """Channels' AuthMiddleware without the database in the handshake: the user is looked up where a consumer first
    asks for it, in that consumer's first database call, instead of before the accept.

    Channels reads the session and the user on its one thread-sensitive thread before any consumer runs. When 200
    students pressed Start in the same second while the workers loaded their models, those lookups queued on that
    thread behind each other and beside the session opens, and Autobahn dropped the sockets still waiting at its 5 s
    handshake timeout: 0 to 55 lost in each run on a 2-core Xeon, all at the same moment. A consumer reads
    `scope["user"]` only inside a sync call (database_sync_to_async, proctoring.consumers.db_call); read on the event
    loop it raises Django's SynchronousOnlyOperation instead of blocking the loop.
    """

    def populate_scope(self, scope: dict[str, Any]) -> None:
        given = "user" in scope  # a user put there before (a test's scope) stays
        super().populate_scope(scope)  # requires the session
        if not given:
            scope["user"] = SimpleLazyObject(lambda: get_user.func(scope))

    async def resolve_scope(self, scope: dict[str, Any]) -> None:
        return None


class HandshakeGuard:
    """Turn a database outage during the handshake into a clean refusal: accept, then close with 4503.

    Channels' AuthMiddleware read the session and the user from the database before any consumer ran (UserOnFirstUse
    leaves that to the consumers now, but the monitor still reads before it accepts); during an outage that raised
    out of the application, and daphne answered the handshake with a bare HTTP 500. After the handshake the
    consumers handle outages themselves, so this only acts while nothing has been sent yet.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        answered = False

        async def watched_send(message: dict[str, Any]) -> None:
            nonlocal answered
            answered = True
            await send(message)

        try:
            await self.inner(scope, receive, watched_send)
        except DatabaseError:
            if answered:
                raise
            log.warning("websocket: the database is unavailable; %s refused with %s", scope.get("path"),
                        TRY_AGAIN_LATER, exc_info=True)  # fmt: skip
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": TRY_AGAIN_LATER})


class UnknownPathConsumer(AsyncWebsocketConsumer):
    """Any other WebSocket path: accepted and closed with 4404, as an unknown attempt is. Without it Channels'
    router raised "No route found", which daphne answered with HTTP 500 and a traceback in the log."""

    async def connect(self) -> None:
        await self.accept()
        await self.close(code=4404)
