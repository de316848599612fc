from __future__ import annotations

import io

import pytest

from accounts.models import User
from accounts.services import users_import_csv
from tests.factories import StudentFactory

pytestmark = pytest.mark.django_db

HEADER = "username,email,role,first_name,last_name,password\n"


def _import(text: str, **kwargs):
    return users_import_csv(file=io.BytesIO(text.encode("utf-8")), **kwargs)


def _problems(report) -> list[tuple[int | None, str]]:
    return [(p.line, p.message) for p in report.problems]


def test_a_good_file_creates_every_user_with_its_role_and_flags():
    report = _import(
        HEADER
        + "alice,alice@example.com,student,Alice,Adams,alice-pass-2024\n"
        + "bob,bob@example.com,Instructor,Bob,Brown,bob-pass-2024x\n"
        + "charlie,charlie@example.com,admin,Charlie,Clark,\n"
    )

    assert report.ok, report.problems
    assert report.created == 3
    assert report.usernames == ["alice", "bob", "charlie"]
    alice, bob, charlie = User.objects.order_by("username")
    assert (alice.role, alice.first_name, alice.last_name) == ("student", "Alice", "Adams")
    assert alice.check_password("alice-pass-2024")
    assert bob.role == "instructor" and not bob.is_staff
    assert charlie.role == "admin" and charlie.is_staff and charlie.is_superuser


def test_a_row_without_password_gets_an_unusable_one_and_the_report_says_so():
    report = _import(HEADER + "alice,alice@example.com,student,Alice,Adams,\n")

    assert report.ok
    assert report.without_password == ["alice"]
    assert "cannot log in until an admin sets one: alice" in report.password_note()
    assert not User.objects.get(username="alice").has_usable_password()


def test_optional_columns_may_be_left_out_and_columns_come_in_any_order():
    report = _import("email,username,role\nalice@example.com,alice,student\n")

    assert report.ok, report.problems
    assert User.objects.get(username="alice").email == "alice@example.com"


def test_a_byte_order_mark_crlf_line_ends_and_quoted_commas_are_fine():
    data = "\ufeff" + HEADER.replace("\n", "\r\n") + 'alice,alice@example.com,student,"Alice, Jr.",Adams,\r\n'

    report = users_import_csv(file=io.BytesIO(data.encode("utf-8")))

    assert report.ok, report.problems
    assert User.objects.get(username="alice").first_name == "Alice, Jr."


def test_a_dry_run_checks_the_file_and_creates_nobody():
    report = _import(HEADER + "alice,alice@example.com,student,,,\n", dry_run=True)

    assert report.ok
    assert report.created == 0
    assert report.usernames == ["alice"]
    assert "would be created" in report.summary()
    assert not User.objects.filter(username="alice").exists()


def test_every_kind_of_bad_row_is_reported_with_its_line_and_nothing_is_created():
    StudentFactory(username="dora", email="dora@example.com")
    report = _import(
        HEADER
        + "alice,alice@example.com,student,Alice,Adams,\n"  # line 2: good
        + ",nobody@example.com,student,,,\n"  # line 3: empty username
        + "bob,not-an-email,student,,,\n"  # line 4: bad email
        + "charlie,charlie@example.com,teacher,,,\n"  # line 5: unknown role
        + "ALICE,alice2@example.com,student,,,\n"  # line 6: username repeats line 2 (case-insensitive)
        + "erin,Alice@Example.com,student,,,\n"  # line 7: email repeats line 2
        + "dora,dora2@example.com,student,,,\n"  # line 8: username already in the database
        + "fred,DORA@example.com,student,,,\n"  # line 9: email already in the database
        + "gina,gina@example.com,student\n"  # line 10: 3 values instead of 6
        + "hugo,hugo@example.com,student,,,123\n"  # line 11: password refused by the validators
        + "ivan,ivan@example.com,,,,\n"  # line 12: empty role
        + "jo hn,john@example.com,student,,,\n"  # line 13: space in username
        + "kim,,student,,,\n"  # line 14: empty email
    )

    assert not report.ok
    assert report.created == 0
    assert User.objects.count() == 1  # only dora, who was there before
    problems = _problems(report)
    lines = [line for line, _ in problems]
    assert 2 not in lines
    assert lines == sorted(lines)

    def message_for(line: int) -> str:
        return " | ".join(m for n, m in problems if n == line)

    assert message_for(3) == "username is empty."
    assert message_for(4) == "email 'not-an-email' is not a valid email address."
    assert message_for(5) == "role 'teacher' is not one of student, instructor, admin."
    assert message_for(6) == "username 'alice' is already used on line 2."
    assert message_for(7) == "email 'alice@example.com' is already used on line 2."
    assert message_for(8) == "username 'dora' already exists."
    assert message_for(9) == "email 'DORA@example.com' is already used by another account."
    assert message_for(10).startswith(
        "expected 6 values (username,email,role,first_name,last_name,password) but found 3"
    )
    assert message_for(11).startswith("password is not accepted:")
    assert "123" not in message_for(11)  # the password itself is never echoed
    assert "too short" in message_for(11)
    assert message_for(12) == "role is empty; use one of student, instructor, admin."
    assert "may contain only letters, digits" in message_for(13)
    assert message_for(14) == "email is empty."
    assert report.summary() == "The file has 12 problems. No users were created; fix the file and import it again."
    assert str(report.problems[0]).startswith("line 3: ")


def test_a_row_with_several_problems_reports_them_all():
    report = _import(HEADER + ",bad,boss,,,\n")

    assert _problems(report) == [
        (2, "username is empty."),
        (2, "email 'bad' is not a valid email address."),
        (2, "role 'boss' is not one of student, instructor, admin."),
    ]


def test_a_file_that_is_not_utf8_is_refused_with_the_line_of_the_bad_byte():
    data = (HEADER + "alice,alice@example.com,student,,,\nbob,bob@example.com,student,Jos\xe9,,\n").encode("latin-1")

    report = users_import_csv(file=io.BytesIO(data))

    assert not report.ok
    assert report.problems[0].line == 3
    assert "not UTF-8" in report.problems[0].message and "0xE9" in report.problems[0].message
    assert User.objects.count() == 0


@pytest.mark.parametrize("content", [b"", b"   \n\n", b"\xef\xbb\xbf"])
def test_an_empty_file_is_refused(content):
    report = users_import_csv(file=io.BytesIO(content))

    assert _problems(report) == [
        (
            None,
            "The file is empty. The first line must be the header: username,email,role,first_name,last_name,password.",
        )
    ]


def test_a_header_without_rows_is_refused():
    report = _import(HEADER)

    assert _problems(report) == [(None, "The file has a header but no users.")]


def test_a_missing_header_is_refused_on_line_1():
    report = _import("alice,alice@example.com,student,,,\n")

    assert report.problems[0].line == 1
    assert "header row is missing" in report.problems[0].message
    assert User.objects.count() == 0


def test_unknown_repeated_and_missing_columns_are_named():
    report = _import("username,mail,username\nalice,alice@example.com,alice\n")

    messages = [m for _, m in _problems(report)]
    assert all(line == 1 for line, _ in _problems(report))
    assert any("unknown column mail" in m for m in messages)
    assert any("username appear more than once" in m for m in messages)
    assert any("no email, role column" in m for m in messages)


def test_a_quoted_value_spanning_lines_keeps_later_line_numbers_right():
    report = _import(HEADER + 'alice,alice@example.com,student,"Alice\nthe second",,\nbob,bad,student,,,\n')

    assert _problems(report) == [(4, "email 'bad' is not a valid email address.")]


def test_too_many_rows_are_refused(monkeypatch):
    monkeypatch.setattr("accounts.services.MAX_IMPORT_ROWS", 2)
    report = _import(HEADER + "".join(f"u{i},u{i}@example.com,student,,,\n" for i in range(3)))

    assert _problems(report) == [(4, "the file has more than 2 users: split it into smaller files.")]


def test_text_and_bytes_are_accepted_as_well_as_files():
    assert users_import_csv(file=HEADER + "alice,alice@example.com,student,,,\n", dry_run=True).ok
    assert users_import_csv(file=(HEADER + "bob,bob@example.com,student,,,\n").encode(), dry_run=True).ok


def test_a_clash_at_insert_time_rolls_back_the_whole_file(monkeypatch):
    # Simulate another admin creating "bob" between the checks and the insert: the database's unique constraint
    # catches it, and alice (inserted just before) must be rolled back with the rest.
    from accounts import selectors

    monkeypatch.setattr(selectors, "users_existing_usernames", lambda *, usernames: set())
    StudentFactory(username="bob", email="bob-old@example.com")

    report = _import(HEADER + "alice,alice@example.com,student,,,\nbob,bob@example.com,student,,,\n")

    assert not report.ok
    assert report.problems[0].line == 3
    assert "could not be created" in report.problems[0].message
    assert not User.objects.filter(username="alice").exists()
