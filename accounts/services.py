"""Writes about users: creating them, changing roles, and the bulk CSV import.

The import validates the whole file before it writes anything, and writes in one transaction, so a bad file never
leaves half its users behind. The management command and the admin upload page both call `users_import_csv`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import IO

from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts import selectors
from accounts.models import User

IMPORT_COLUMNS = ("username", "email", "role", "first_name", "last_name", "password")
REQUIRED_COLUMNS = ("username", "email", "role")
# Limits that keep one upload from tying up a web worker: password hashing costs about half a second per row with
# Django's default PBKDF2 work factor, so big files with passwords belong in the management command.
MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_IMPORT_ROWS = 5000

_ROLES = ", ".join(User.Role.values)


def role_access(*, role: str, previous_role: str | None, is_staff: bool, is_superuser: bool) -> tuple[bool, bool]:
    """The (is_staff, is_superuser) pair a user should have after taking `role`.

    Pure rule, shared by user_create, user_role_set and the admin's change form:
    1. Admins manage everything in the Django admin, so the role grants both flags.
    2. Students never get admin access.
    3. Instructors get none by default. One who was given staff access by hand keeps it; one who was an admin loses
       what the admin role gave.
    """
    if role == User.Role.ADMIN:
        return True, True
    if role == User.Role.STUDENT or previous_role == User.Role.ADMIN:
        return False, False
    return is_staff, is_superuser


def _check_role(role: str) -> None:
    if role not in User.Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}: use one of {_ROLES}."})


def user_create(
    *,
    username: str,
    email: str,
    role: str,
    password: str | None = None,
    first_name: str = "",
    last_name: str = "",
) -> User:
    """Create a user with the admin access that goes with the role.

    Without a password the account gets an unusable one: it cannot log in until an admin sets a password.
    Raises ValidationError on an unknown role, a taken username or a malformed field.
    """
    _check_role(role)
    user = User(
        username=username,
        email=User.objects.normalize_email(email),
        role=role,
        first_name=first_name,
        last_name=last_name,
    )
    user.is_staff, user.is_superuser = role_access(role=role, previous_role=None, is_staff=False, is_superuser=False)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean()
    user.save()
    return user


def user_role_set(*, user: User, role: str) -> User:
    """Change a user's role, and the admin flags with it (see role_access)."""
    _check_role(role)
    previous = user.role
    user.role = role
    user.is_staff, user.is_superuser = role_access(
        role=role, previous_role=previous, is_staff=user.is_staff, is_superuser=user.is_superuser
    )
    user.save(update_fields=["role", "is_staff", "is_superuser"])
    return user


# --- CSV import -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportProblem:
    """One thing wrong with the file. `line` is the 1-based line in the file; None means the file as a whole."""

    line: int | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line is not None else self.message


@dataclass
class ImportReport:
    """What an import found and did.

    `usernames` are the users in the file (created, or that would be created in a dry run, when the file is good).
    `created` is how many were actually saved: 0 for a dry run or a bad file.
    `without_password` are the usernames given an unusable password because the row had none.
    """

    dry_run: bool = False
    problems: list[ImportProblem] = field(default_factory=list)
    usernames: list[str] = field(default_factory=list)
    without_password: list[str] = field(default_factory=list)
    created: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, line: int | None, message: str) -> None:
        self.problems.append(ImportProblem(line=line, message=message))

    def summary(self) -> str:
        """One sentence a person can act on."""
        if not self.ok:
            n = len(self.problems)
            problems = f"{n} problem{'s' if n != 1 else ''}"
            return f"The file has {problems}. No users were created; fix the file and import it again."
        count = len(self.usernames)
        users = f"{count} user{'s' if count != 1 else ''}"
        if self.dry_run:
            return f"The file is valid: {users} would be created. Nothing was saved (dry run)."
        return f"Created {users}."

    def password_note(self) -> str:
        """Says which accounts cannot log in yet, or "" when every row had a password."""
        if not self.without_password:
            return ""
        n = len(self.without_password)
        who = ", ".join(self.without_password[:20]) + (f" and {n - 20} more" if n > 20 else "")
        users = f"{n} user{'s' if n != 1 else ''}"
        if self.dry_run:
            verb = "will have"
        else:
            verb = "has" if n == 1 else "have"
        return f"{users} {verb} no usable password and cannot log in until an admin sets one: {who}."


@dataclass(frozen=True)
class _Row:
    line: int
    username: str
    email: str
    role: str
    first_name: str
    last_name: str
    password: str


def _read_bytes(file: IO[bytes] | IO[str] | bytes | str, report: ImportReport) -> str | None:
    """The file's text, or None after reporting why it cannot be read."""
    if isinstance(file, (bytes, str)):
        data = file
    else:
        if hasattr(file, "seek"):
            file.seek(0)
        # Read one byte past the limit to know the file is too big without reading all of it.
        data = file.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        report.add(
            None, f"The file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB: split it into smaller files."
        )
        return None
    if isinstance(data, bytes):
        try:
            # utf-8-sig drops the byte-order mark that spreadsheet programs put at the start of "CSV UTF-8" files.
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            report.add(
                line,
                f"the file is not UTF-8 text (byte 0x{data[exc.start]:02X} cannot be read). "
                'Save it as "CSV UTF-8" and import it again.',
            )
            return None
    else:
        text = data.removeprefix("\ufeff")
    if not text.strip():
        report.add(None, "The file is empty. The first line must be the header: " + ",".join(IMPORT_COLUMNS) + ".")
        return None
    return text


def _parse_header(cells: list[str], line: int, report: ImportReport) -> list[str] | None:
    header = [c.strip().lower() for c in cells]
    if "username" not in header and "email" not in header:
        report.add(
            line,
            "the header row is missing. The first line must name the columns, for example: "
            + ",".join(IMPORT_COLUMNS)
            + ".",
        )
        return None
    ok = True
    unknown = [c or "(empty)" for c in header if c not in IMPORT_COLUMNS]
    if unknown:
        report.add(
            line,
            f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
            f"the columns are {', '.join(IMPORT_COLUMNS)}.",
        )
        ok = False
    repeated = sorted({c for c in header if c and header.count(c) > 1})
    if repeated:
        report.add(line, f"column{'s' if len(repeated) > 1 else ''} {', '.join(repeated)} appear more than once.")
        ok = False
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        report.add(line, f"the header has no {', '.join(missing)} column; {', '.join(REQUIRED_COLUMNS)} are required.")
        ok = False
    return header if ok else None


def _check_row(values: dict[str, str], line: int, report: ImportReport) -> _Row | None:
    """Field-by-field checks that need no database. Reports every problem of the row, not only the first."""
    before = len(report.problems)
    username = values.get("username", "")
    email = values.get("email", "")
    role = values.get("role", "").lower()
    first_name = values.get("first_name", "")
    last_name = values.get("last_name", "")
    password = values.get("password", "")

    if not username:
        report.add(line, "username is empty.")
    elif len(username) > 150:
        report.add(line, f"username {username[:20]!r}... is longer than 150 characters.")
    else:
        try:
            User.username_validator(username)
        except ValidationError:
            report.add(line, f"username {username!r} may contain only letters, digits and @ . + - _ (no spaces).")

    if not email:
        report.add(line, "email is empty.")
    else:
        try:
            validate_email(email)
        except ValidationError:
            report.add(line, f"email {email!r} is not a valid email address.")

    if not role:
        report.add(line, f"role is empty; use one of {_ROLES}.")
    elif role not in User.Role.values:
        report.add(line, f"role {role!r} is not one of {_ROLES}.")

    for name, value in (("first_name", first_name), ("last_name", last_name)):
        if len(value) > 150:
            report.add(line, f"{name} is longer than 150 characters.")

    if password:
        probe = User(username=username, email=email, first_name=first_name, last_name=last_name)
        try:
            validate_password(password, user=probe)
        except ValidationError as exc:
            # Never echo the password itself: the report is shown on screen and printed to logs.
            report.add(line, "password is not accepted: " + " ".join(exc.messages))

    if len(report.problems) > before:
        return None
    return _Row(line, username, email, role, first_name, last_name, password)


def _parse(text: str, report: ImportReport) -> list[_Row]:
    """Every good row; every problem goes to the report."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    rows: list[_Row] = []
    seen_usernames: dict[str, int] = {}
    seen_emails: dict[str, int] = {}
    data_rows = 0
    last_line = 0
    try:
        for cells in reader:
            # The row starts on the line after the previous row ended; reader.line_num counts physical lines, so a
            # quoted value spanning lines still points at the row's first line.
            line = last_line + 1
            last_line = reader.line_num
            if not any(c.strip() for c in cells):
                continue  # blank lines, including the trailing one, are not rows
            if header is None:
                header = _parse_header(cells, line, report)
                if header is None:
                    return []
                continue
            data_rows += 1
            if data_rows > MAX_IMPORT_ROWS:
                report.add(line, f"the file has more than {MAX_IMPORT_ROWS} users: split it into smaller files.")
                return []
            if len(cells) != len(header):
                report.add(
                    line,
                    f"expected {len(header)} values ({','.join(header)}) but found {len(cells)}. "
                    "Check for a missing or extra comma.",
                )
                continue
            row = _check_row({k: v.strip() for k, v in zip(header, cells, strict=True)}, line, report)
            # Duplicates inside the file are checked on every row that has the values, good or bad otherwise, so
            # one pass names them all.
            username_key = cells[header.index("username")].strip().lower()
            email_key = cells[header.index("email")].strip().lower()
            duplicate = False
            if username_key in seen_usernames:
                report.add(line, f"username {username_key!r} is already used on line {seen_usernames[username_key]}.")
                duplicate = True
            elif username_key:
                seen_usernames[username_key] = line
            if email_key in seen_emails:
                report.add(line, f"email {email_key!r} is already used on line {seen_emails[email_key]}.")
                duplicate = True
            elif email_key:
                seen_emails[email_key] = line
            if row is not None and not duplicate:
                rows.append(row)
    except csv.Error as exc:
        report.add(reader.line_num or None, f"the file cannot be read as CSV ({exc}).")
        return []
    if header is None:
        report.add(None, "The file is empty. The first line must be the header: " + ",".join(IMPORT_COLUMNS) + ".")
    elif data_rows == 0:
        report.add(None, "The file has a header but no users.")
    return rows


def _check_against_database(rows: list[_Row], report: ImportReport) -> None:
    taken_usernames = selectors.users_existing_usernames(usernames=(r.username for r in rows))
    taken_emails = selectors.users_existing_emails(emails=(r.email for r in rows))
    for row in rows:
        if row.username.lower() in taken_usernames:
            report.add(row.line, f"username {row.username!r} already exists.")
        if row.email.lower() in taken_emails:
            report.add(row.line, f"email {row.email!r} is already used by another account.")


def users_import_csv(*, file: IO[bytes] | IO[str] | bytes | str, dry_run: bool = False) -> ImportReport:
    """Create the users listed in a CSV file, all or nothing.

    1. Read and decode the file (UTF-8, size limit).
    2. Check the header, then every row: column count, each field, duplicates within the file.
    3. Check usernames and emails against the database.
    4. If anything is wrong, or for a dry run, stop there and report.
    5. Create every user in one transaction.
    Problems are sorted by line, so the report reads top to bottom like the file.
    """
    report = ImportReport(dry_run=dry_run)
    text = _read_bytes(file, report)
    if text is None:
        return report
    rows = _parse(text, report)
    with transaction.atomic():
        if rows:
            _check_against_database(rows, report)
        report.problems.sort(key=lambda p: p.line or 0)
        if not report.ok:
            return report
        report.usernames = [r.username for r in rows]
        report.without_password = [r.username for r in rows if not r.password]
        if dry_run:
            return report
        current: _Row | None = None
        try:
            # A savepoint of its own, so that a failure rolls back every user of this file and nothing else.
            with transaction.atomic():
                for current in rows:
                    user_create(
                        username=current.username,
                        email=current.email,
                        role=current.role,
                        password=current.password or None,
                        first_name=current.first_name,
                        last_name=current.last_name,
                    )
        except (IntegrityError, ValidationError) as exc:
            # Someone created a clashing account between the checks and the insert. Report it like any bad row.
            detail = (
                " ".join(exc.messages) if isinstance(exc, ValidationError) else "it clashes with an existing account"
            )
            report.add(current.line if current else None, f"could not be created: {detail}")
            return report
        report.created = len(rows)
    return report


@dataclass
class InviteReport:
    sent: list[str] = field(default_factory=list)
    without_email: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"Sent {len(self.sent)} invitation{'s' if len(self.sent) != 1 else ''}."]
        if self.without_email:
            who = ", ".join(self.without_email[:20]) + (" and more" if len(self.without_email) > 20 else "")
            parts.append(f"No email address, so no invitation: {who}.")
        return " ".join(parts)


def users_invite(*, usernames: list[str], domain: str, use_https: bool, site_name: str = "") -> InviteReport:
    """Email each user a one-time link to choose their password (Django's password-reset token: it works once, for
    PASSWORD_RESET_TIMEOUT, and dies when the password changes). Unlike "Forgotten your password?", this reaches
    users who have no usable password yet, which is how an import without passwords leaves them."""
    report = InviteReport()
    context = {"domain": domain, "site_name": site_name or domain, "protocol": "https" if use_https else "http"}
    for user in User.objects.filter(username__in=usernames).order_by("username"):
        if not user.email:
            report.without_email.append(user.username)
            continue
        values = {
            **context,
            "user": user,
            "uid": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        }
        subject = "".join(render_to_string("accounts/invitation_subject.txt", values).splitlines())
        send_mail(subject, render_to_string("accounts/invitation_email.txt", values), None, [user.email])
        report.sent.append(user.username)
    return report
