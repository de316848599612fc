"""A small fixed-window rate limit on Django's cache, for endpoints that run models inside a web process.

The enrolment check runs the face models in the ASGI process itself (not in the inference pool), so a script that
posts photos in a loop could take the CPU that live exams need. A student's page sends at most about two photos a
second; anything well beyond that is refused cheaply, before any image is decoded.

With the default local-memory cache the window is per process; with several processes configure a shared cache
(CACHES) if a hard limit across them matters.
"""

from __future__ import annotations

from django.core.cache import cache


def rate_allow(*, key: str, limit: int, window_s: int) -> bool:
    """Count one hit against `key` in the current window; False once `limit` hits were counted in it."""
    bucket = f"ratelimit:{key}"
    # add() only sets a missing key, so the window starts at the first hit and expires with it.
    cache.add(bucket, 0, timeout=window_s)
    try:
        hits = cache.incr(bucket)
    except ValueError:  # expired between add() and incr()
        cache.set(bucket, 1, timeout=window_s)
        hits = 1
    return hits <= limit
