from __future__ import annotations

import pytest
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError

from accounts.models import User

pytestmark = pytest.mark.django_db

HEADER = "username,email,role,first_name,last_name,password\n"


def _run_from_argv(*argv: str) -> int:
    """Run the command the way manage.py does, returning the process's exit status."""
    command = load_command_class("accounts", "import_users")
    try:
        command.run_from_argv(["manage.py", "import_users", *argv])
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def test_it_creates_the_users_and_prints_the_report(tmp_path, capsys):
    path = tmp_path / "users.csv"
    path.write_text(
        HEADER + "alice,alice@example.com,student,Alice,,alice-pass-2024\nbob,bob@example.com,instructor,,,\n"
    )

    assert _run_from_argv(str(path)) == 0

    out = capsys.readouterr().out
    assert "Created 2 users." in out
    assert "Created: alice, bob" in out
    assert "1 user has no usable password and cannot log in until an admin sets one: bob." in out
    assert set(User.objects.values_list("username", flat=True)) == {"alice", "bob"}


def test_a_dry_run_prints_what_it_would_do_and_creates_nobody(tmp_path, capsys):
    path = tmp_path / "users.csv"
    path.write_text(HEADER + "alice,alice@example.com,student,,,\n")

    assert _run_from_argv(str(path), "--dry-run") == 0

    out = capsys.readouterr().out
    assert "1 user would be created. Nothing was saved (dry run)." in out
    assert "Would create: alice" in out
    assert not User.objects.exists()


def test_a_bad_file_exits_non_zero_and_lists_each_line(tmp_path, capsys):
    path = tmp_path / "users.csv"
    path.write_text(
        HEADER + "alice,alice@example.com,student,,,\nbob,not-an-email,student,,,\n,x@example.com,admin,,,\n"
    )

    assert _run_from_argv(str(path)) == 1

    err = capsys.readouterr().err
    assert f"{path}: line 3: email 'not-an-email' is not a valid email address." in err
    assert f"{path}: line 4: username is empty." in err
    assert "The file has 2 problems. No users were created" in err
    assert not User.objects.exists()


def test_a_non_utf8_file_exits_non_zero(tmp_path, capsys):
    path = tmp_path / "users.csv"
    path.write_bytes((HEADER + "alice,alice@example.com,student,Andr\xe9,,\n").encode("cp1252"))

    assert _run_from_argv(str(path)) == 1
    assert "line 2: the file is not UTF-8 text" in capsys.readouterr().err


def test_a_missing_file_is_a_clear_error():
    with pytest.raises(CommandError, match="Cannot read .*nowhere.csv: No such file or directory"):
        call_command("import_users", "/nowhere.csv")
