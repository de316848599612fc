"""One time format everywhere: `{% when value %}` and, beside an exam's times, the exam's own zone.

{% load exam_times %}
{% when exam.opens_at %}                 Mon 1 Dec 2026, 10:00 CET   (the reader's zone)
{% when exam.opens_at exam %}            ... plus "(09:00 GMT in the exam's time zone, Europe/London)" when the
                                         exam's zone is not the reader's
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html

register = template.Library()

FORMAT = "D j M Y, H:i T"


@register.simple_tag
def when(value: datetime | None, exam=None, fmt: str = FORMAT) -> str:
    if value is None:
        return ""
    local = timezone.localtime(value)
    shown = format_html('<time datetime="{}">{}</time>', value.isoformat(), date_format(local, fmt))
    zone = getattr(exam, "time_zone", "") or ""
    if not zone or zone == timezone.get_current_timezone_name():
        return shown
    try:
        theirs = timezone.localtime(value, zoneinfo.ZoneInfo(zone))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return shown
    if theirs.utcoffset() == local.utcoffset():
        return shown
    their_format = "H:i T" if theirs.date() == local.date() else "D j M, H:i T"
    return format_html(
        '{} <span class="muted">({} in the exam\'s time zone, {})</span>',
        shown,
        date_format(theirs, their_format),
        zone,
    )
