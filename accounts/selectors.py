"""Reads about users. Writes live in accounts.services."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from itertools import islice

from django.db.models import QuerySet
from django.db.models.functions import Lower

from accounts.models import User

# Stay well under SQLite's bound-parameter limit (999 on old builds) when checking thousands of names at once.
_IN_CHUNK = 500

EXPORT_COLUMNS = ("username", "email", "role", "first_name", "last_name")


def _chunks(values: Iterable[str], size: int = _IN_CHUNK) -> Iterator[list[str]]:
    it = iter(values)
    while chunk := list(islice(it, size)):
        yield chunk


def user_list(*, role: str | None = None) -> QuerySet[User]:
    """Users ordered by username, optionally of one role."""
    qs = User.objects.all()
    if role is not None:
        qs = qs.filter(role=role)
    return qs.order_by("username")


def users_existing_usernames(*, usernames: Iterable[str]) -> set[str]:
    """The lower-cased usernames among `usernames` that an account already has, compared case-insensitively.

    Case-insensitive because "Alice" and "alice" as two accounts only confuse people (Django's own
    UserCreationForm refuses that too), even though the database column is case-sensitive.
    """
    found: set[str] = set()
    wanted = {u.lower() for u in usernames if u}
    for chunk in _chunks(sorted(wanted)):
        found.update(
            User.objects.annotate(username_lower=Lower("username"))
            .filter(username_lower__in=chunk)
            .values_list("username_lower", flat=True)
        )
    return found


def users_existing_emails(*, emails: Iterable[str]) -> set[str]:
    """The lower-cased emails among `emails` that an account already uses, compared case-insensitively."""
    found: set[str] = set()
    wanted = {e.lower() for e in emails if e}
    for chunk in _chunks(sorted(wanted)):
        found.update(
            User.objects.annotate(email_lower=Lower("email"))
            .filter(email_lower__in=chunk)
            .values_list("email_lower", flat=True)
        )
    return found


def _spreadsheet_safe(value: str) -> str:
    # Names are free text, and a cell starting with = + - @ is run as a formula by spreadsheet programs (CSV
    # injection). Usernames and emails are validated formats without parentheses, so they stay as they are and the
    # file can be imported again.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def users_export_csv(*, users: Iterable[User]) -> str:
    """CSV text with the import's columns (no password), so an export can be edited and imported elsewhere."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for user in users:
        writer.writerow(
            [
                user.username,
                user.email,
                user.role,
                _spreadsheet_safe(user.first_name),
                _spreadsheet_safe(user.last_name),
            ]
        )
    return out.getvalue()
