"""Site-wide HTTP middleware."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers, patch_cache_control

from examsite.timezones import zone_for


class PrivatePagesMiddleware:
    """Every page served to a signed-in user is `no-store`: review pages, evidence, flags and exam pages carry
    personal data, and must not stay in a shared machine's browser cache or in a proxy. Static files never reach
    this (WhiteNoise answers them first), and a view that set its own Cache-Control keeps it, made private."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            if response.has_header("Cache-Control"):
                patch_cache_control(response, private=True, no_store=True)
            else:
                add_never_cache_headers(response)
                patch_cache_control(response, private=True)
        return response


class TimeZoneMiddleware:
    """Show every time in the reader's zone (examsite.timezones.zone_for): pages, forms (a time typed into a form is
    read in that zone) and exports. `request.time_zone` names it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.time_zone = zone_for(request)
        timezone.activate(zoneinfo.ZoneInfo(request.time_zone))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


class LmsFramingMiddleware:
    """An LMS shows LTI tools in an iframe (issue 13). With LMS origins in settings.LTI_FRAME_ANCESTORS, every page
    may be framed by them, and by no one else: the Content-Security-Policy's frame-ancestors names them (replacing
    'none'), and X-Frame-Options, which can only say DENY or SAMEORIGIN, is left out (browsers that know
    frame-ancestors follow it instead). Without the setting nothing changes: no page can be framed."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        origins = list(getattr(settings, "LTI_FRAME_ANCESTORS", []))
        if origins:
            response.xframe_options_exempt = True
            replace = dict(getattr(response, "_csp_replace", None) or {})
            replace["frame-ancestors"] = origins
            response._csp_replace = replace  # type: ignore[attr-defined]
        return response
