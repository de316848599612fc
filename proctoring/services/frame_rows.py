"""The three statements every analysed frame runs, in SQL of their own instead of the ORM's.

Every analysed frame locks its session's row, inserts an Observation and updates the session: at 150 students that
is 75 times a second on a 2-core box that also runs the models. The ORM spent 1.08 ms of the server's CPU a frame
on those three (query compilation, model instances, parameter quoting), these 0.43 ms (`bench/frame_rows.py`), and
at 150 students the ORM's share was 41% of the time daphne held the GIL (py-spy, issue 8).

Nothing else changes: the statements run on Django's connection inside the caller's transaction, and table names,
column names, parameters and values go through the models' own fields (`_meta`, `get_db_prep_save`, Django's
converters), so they follow the models and work on PostgreSQL and SQLite alike (SQLite has no row locks; its
transactions are IMMEDIATE, see examsite/settings.py). `tests/proctoring/test_frame_rows.py` checks that the rows
written here read back through the ORM exactly as `Observation.objects.create` writes them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Field, Model

from exams.models import Attempt
from proctoring.models import Observation, ProctoringSession


@dataclass(frozen=True)
class LockedSession:
    """What a frame needs of its locked session row and its attempt."""

    status: str
    end_reason: str
    state: dict[str, Any]
    settings_snapshot: dict[str, Any]
    last_seq: int
    attempt: Attempt  # its id, status and deadline only: enough for Attempt.is_live()


def _field(model: type[Model], name: str) -> Field[Any, Any]:
    field = model._meta.get_field(name)
    assert isinstance(field, Field)
    return field


def _quoted(field: Field[Any, Any]) -> str:
    assert field.column is not None
    return connection.ops.quote_name(field.column)


def _column(model: type[Model], name: str) -> str:
    return _quoted(_field(model, name))


@functools.cache
def _converters(model: type[Model], name: str) -> tuple[Any, list[Any]]:
    field = _field(model, name)
    column = field.get_col(model._meta.db_table)
    return column, connection.ops.get_db_converters(column) + field.get_db_converters(connection)


def _from_db(model: type[Model], name: str, value: Any) -> Any:
    """A raw column value as the ORM would give it (SQLCompiler.apply_converters): JSON decoded, datetimes aware."""
    column, converters = _converters(model, name)
    for converter in converters:
        value = converter(value, column, connection)
    return value


_SESSION_FIELDS = ("status", "end_reason", "state", "settings_snapshot", "last_seq", "attempt")
_ATTEMPT_FIELDS = ("status", "deadline")


@functools.cache
def _lock_sql() -> str:
    session, attempt = ProctoringSession._meta.db_table, Attempt._meta.db_table
    columns = [f"s.{_column(ProctoringSession, name)}" for name in _SESSION_FIELDS]
    columns += [f"a.{_column(Attempt, name)}" for name in _ATTEMPT_FIELDS]
    # The session's row only where the database can say so (PostgreSQL); elsewhere what select_for_update() does with
    # select_related() (MySQL locks the attempt's row too); SQLite has no row locks (IMMEDIATE transactions instead).
    lock = ""
    if connection.features.has_select_for_update_of:
        lock = " FOR UPDATE OF s"
    elif connection.features.has_select_for_update:
        lock = " FOR UPDATE"
    joined = f"a.{_column(Attempt, 'id')} = s.{_column(ProctoringSession, 'attempt')}"
    return (
        f"SELECT {', '.join(columns)} FROM {connection.ops.quote_name(session)} s "
        f"JOIN {connection.ops.quote_name(attempt)} a ON {joined} WHERE s.{_column(ProctoringSession, 'id')} = %s{lock}"
    )


def session_lock(session_id: int) -> LockedSession:
    """Lock the session's row for this transaction (one writer per session, even across server processes) and read
    it. Raises ProctoringSession.DoesNotExist as the ORM's get() would."""
    with connection.cursor() as cursor:
        cursor.execute(_lock_sql(), [session_id])
        row = cursor.fetchone()
    if row is None:
        raise ProctoringSession.DoesNotExist(f"no proctoring session {session_id}")
    values = dict(zip(_SESSION_FIELDS, row[: len(_SESSION_FIELDS)], strict=True))
    status, deadline = row[len(_SESSION_FIELDS) :]
    read = {name: _from_db(ProctoringSession, name, values[name]) for name in ("state", "settings_snapshot")}
    return LockedSession(
        status=values["status"],
        end_reason=values["end_reason"],
        state=read["state"] or {},
        settings_snapshot=read["settings_snapshot"] or {},
        last_seq=values["last_seq"],
        attempt=Attempt(id=values["attempt"], status=status, deadline=_from_db(Attempt, "deadline", deadline)),
    )


@functools.cache
def _observation_fields() -> tuple[Field[Any, Any], ...]:
    return tuple(
        field for field in Observation._meta.concrete_fields if isinstance(field, Field) and not field.primary_key
    )


@functools.cache
def _observation_sql() -> str:
    fields = _observation_fields()
    columns = ", ".join(_quoted(field) for field in fields)
    marks = ", ".join(["%s"] * len(fields))
    return f"INSERT INTO {connection.ops.quote_name(Observation._meta.db_table)} ({columns}) VALUES ({marks})"


def observation_insert(*, session_id: int, **values: Any) -> None:
    """Insert one Observation. Every field but the session must be given, by name (a missing one is a KeyError:
    this path never relies on defaults, so a new field cannot be forgotten silently)."""
    values["session"] = session_id
    params = [field.get_db_prep_save(values[field.name], connection) for field in _observation_fields()]
    with connection.cursor() as cursor:
        cursor.execute(_observation_sql(), params)


@functools.cache
def _session_update_sql() -> str:
    dropped, analysed = _column(ProctoringSession, "frames_dropped"), _column(ProctoringSession, "frames_analysed")
    return (
        f"UPDATE {connection.ops.quote_name(ProctoringSession._meta.db_table)} SET "
        f"{_column(ProctoringSession, 'state')} = %s, {dropped} = {dropped} + %s, "
        f"{_column(ProctoringSession, 'last_frame_at')} = %s, {analysed} = {analysed} + 1, "
        f"{_column(ProctoringSession, 'last_seq')} = %s WHERE {_column(ProctoringSession, 'id')} = %s"
    )


def session_frame_update(
    *, session_id: int, state: dict[str, Any], dropped: int, last_frame_at: datetime, last_seq: int
) -> None:
    """The session after an analysed frame: the rules' new state, the frame counters and the last frame."""
    params = [
        _field(ProctoringSession, "state").get_db_prep_save(state, connection),
        dropped,
        _field(ProctoringSession, "last_frame_at").get_db_prep_save(last_frame_at, connection),
        last_seq,
        session_id,
    ]
    with connection.cursor() as cursor:
        cursor.execute(_session_update_sql(), params)
