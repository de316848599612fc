"""Time zones: which zone a request reads times in, and checking a zone name.

Times are stored in UTC. Each page shows them in the reader's zone: their own setting (User.time_zone), else the zone
their browser reports (the `tz` cookie that static/tz.js sets), else TIME_ZONE. Exams remember the zone their times
were entered in, and pages show a student's local time beside the exam's (exams/templatetags/exam_times.py).
"""

from __future__ import annotations

import zoneinfo
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest

COOKIE = "tz"


@lru_cache(maxsize=1)
def known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(value: str) -> None:
    if value and value not in known_zones():
        raise ValidationError(f"{value!r} is not a time zone name such as Europe/Berlin or America/New_York.")


def zone_for(request: HttpRequest) -> str:
    user = getattr(request, "user", None)
    own = getattr(user, "time_zone", "") if user is not None and user.is_authenticated else ""
    if own in known_zones():
        return own
    browser = request.COOKIES.get(COOKIE, "")
    if browser in known_zones():
        return browser
    return settings.TIME_ZONE
