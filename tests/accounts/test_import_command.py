from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import User

pytestmark = pytest.mark.django_db

HEADER = "username,email,role,first_name,last_name,password\n"


def _run(*argv: str) -> tuple[int, str, str]:
    """Run the command; return the exit status manage.py would give, stdout and stderr.

    manage.py turns a CommandError into `sys.exit(error.returncode)`. Calling run_from_argv here would do the same,
    but it also closes every database connection, which breaks the test's transaction on PostgreSQL.
    """
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_users", *argv, stdout=out, stderr=err)
    except CommandError as error:
        err.write(f"CommandError: {error}\n")
        return error.returncode, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def test_it_creates_the_users_and_prints_the_report(tmp_path):
    path = tmp_path / "users.csv"
    path.write_text(
        HEADER + "alice,alice@example.com,student,Alice,,alice-pass-2024\nbob,bob@example.com,instructor,,,\n"
    )

    status, out, _ = _run(str(path))

    assert status == 0
    assert "Created 2 users." in out
    assert "Created: alice, bob" in out
    assert "1 user has no usable password and cannot log in until an admin sets one: bob." in out
    assert set(User.objects.values_list("username", flat=True)) == {"alice", "bob"}


def test_a_dry_run_prints_what_it_would_do_and_creates_nobody(tmp_path):
    path = tmp_path / "users.csv"
    path.write_text(HEADER + "alice,alice@example.com,student,,,\n")

    status, out, _ = _run(str(path), "--dry-run")

    assert status == 0
    assert "1 user would be created. Nothing was saved (dry run)." in out
    assert "Would create: alice" in out
    assert not User.objects.exists()


def test_a_bad_file_exits_non_zero_and_lists_each_line(tmp_path):
    path = tmp_path / "users.csv"
    path.write_text(
        HEADER + "alice,alice@example.com,student,,,\nbob,not-an-email,student,,,\n,x@example.com,admin,,,\n"
    )

    status, _, err = _run(str(path))

    assert status == 1
    assert f"{path}: line 3: email 'not-an-email' is not a valid email address." in err
    assert f"{path}: line 4: username is empty." in err
    assert "The file has 2 problems. No users were created" in err
    assert not User.objects.exists()


def test_a_non_utf8_file_exits_non_zero(tmp_path):
    path = tmp_path / "users.csv"
    path.write_bytes((HEADER + "alice,alice@example.com,student,Andr\xe9,,\n").encode("cp1252"))

    status, _, err = _run(str(path))

    assert status == 1
    assert "line 2: the file is not UTF-8 text" in err


def test_a_missing_file_is_a_clear_error():
    status, _, err = _run("/nowhere.csv")

    assert status == 1
    assert "CommandError: Cannot read /nowhere.csv: No such file or directory." in err
