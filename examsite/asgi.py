"""ASGI entry point: HTTP through Django, WebSockets through Channels.

get_asgi_application() runs first so that the app registry is ready before any consumer module imports models.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examsite.settings")
django_asgi_app = get_asgi_application()


def close_oversized_messages_with_1009() -> None:
    """Make daphne close a connection whose message is over `--websocket_max_message_size` with a close frame
    carrying 1009 (message too big), as docs/protocol.md says, instead of dropping the TCP connection (which the
    client sees as 1006, "abnormal closure", and cannot tell from a network failure).

    daphne exposes no option for it: Autobahn's `failByDrop` is set on the factory, which daphne builds in
    `Server.run()`, after it has imported this module.
    """
    try:
        from daphne.ws_protocol import WebSocketFactory  # lazy: only under daphne
    except ImportError:  # another ASGI server: nothing to do
        return
    if getattr(WebSocketFactory, "closes_with_code", False):
        return
    init = WebSocketFactory.__init__

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.setProtocolOptions(failByDrop=False)

    WebSocketFactory.__init__ = __init__
    WebSocketFactory.closes_with_code = True


close_oversized_messages_with_1009()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from channels.sessions import SessionMiddlewareStack  # noqa: E402
from django.urls import re_path  # noqa: E402

from examsite.housekeeping import start_in_process as start_housekeeping  # noqa: E402
from examsite.websocket import HandshakeGuard, UnknownPathConsumer, UserOnFirstUse  # noqa: E402
from proctoring.review.routing import websocket_urlpatterns as review_sockets  # noqa: E402
from proctoring.routing import websocket_urlpatterns as proctoring_sockets  # noqa: E402

start_housekeeping()

# Each app's sockets, then any other path: closed with 4404.
websocket_urlpatterns = [*proctoring_sockets, *review_sockets, re_path(r"", UnknownPathConsumer.as_asgi())]

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            HandshakeGuard(SessionMiddlewareStack(UserOnFirstUse(URLRouter(websocket_urlpatterns))))
        ),
    }
)
