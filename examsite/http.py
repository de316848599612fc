"""What every app's views share about HTTP."""

from __future__ import annotations

from typing import TypeVar

from django.http import Http404

T = TypeVar("T")


def found_or_404(item: T | None, message: str = "Not found") -> T:
    """The item a selector found, or a 404. Selectors answer None for "no such thing" and "not yours" alike, so an
    id reveals nothing; the view turns that into the HTTP answer."""
    if item is None:
        raise Http404(message)
    return item
