"""Sign-in throttling, through django-axes (a maintained library: it records every attempt, locks out by account
and by client address, and its attempts are listed in the admin).

What this module adds to it:
- **client_ip**: the client's address. The peer address, unless the deployment says it sits behind trusted proxies
  (TRUSTED_PROXY_COUNT); only then is X-Forwarded-For read, and only the hops those proxies appended, so a client
  cannot pick its own address by sending the header itself.
- **locked_out**: a calm page that says how long to wait.
- **cool_off**: a delay that grows: LOGIN_COOLOFF_MINUTES after LOGIN_FAILURE_LIMIT failures, doubling with each
  further failure during the lockout, up to LOGIN_COOLOFF_MAX_MINUTES.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Max, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def client_ip(request: HttpRequest) -> str | None:
    peer = request.META.get("REMOTE_ADDR")
    hops = settings.TRUSTED_PROXY_COUNT
    if hops <= 0:
        return peer
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    # Each trusted proxy appends the address it received the request from; the client is `hops` from the right.
    # Fewer entries than proxies means the request did not come through all of them: use the peer.
    return forwarded[-hops] if len(forwarded) >= hops else peer


def failures_for(request: HttpRequest | None) -> int:
    """The most failures recorded for this request's username or client address (0 without a request)."""
    if request is None:
        return 0
    from axes.models import AccessAttempt  # axes' models, once the app registry is ready

    username = request.POST.get(settings.AXES_USERNAME_FORM_FIELD) if request.method == "POST" else None
    match = Q(ip_address=client_ip(request))
    if username:
        match |= Q(username=username)
    return AccessAttempt.objects.filter(match).aggregate(most=Max("failures_since_start"))["most"] or 0


def cool_off(request: HttpRequest | None = None) -> timedelta:
    over = max(0, failures_for(request) - settings.AXES_FAILURE_LIMIT)
    minutes = min(settings.LOGIN_COOLOFF_MINUTES * 2**over, settings.LOGIN_COOLOFF_MAX_MINUTES)
    return timedelta(minutes=minutes)


def locked_out(request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None):
    """The calm page a locked-out sign-in gets (HTTP 429), with how long to wait."""
    username = (credentials or {}).get("username") or request.POST.get(settings.AXES_USERNAME_FORM_FIELD, "")
    minutes = max(1, round(cool_off(request).total_seconds() / 60))
    return render(request, "registration/locked_out.html", {"username": username, "minutes": minutes}, status=429)
