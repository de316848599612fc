"""Two Start clicks at once (two tabs, a double click) must give one attempt. Real concurrency needs real
connections, so this runs on PostgreSQL (CI, where REQUIRE_SERVICES makes its absence a failure)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from exams import services
from exams.models import Attempt
from tests.conftest import service_missing


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_starts_give_one_attempt(paper, alice):
    if connection.vendor != "postgresql":
        service_missing("needs PostgreSQL (DATABASE_URL) for concurrent connections; CI runs it")
    barrier = threading.Barrier(4)
    results: list[int] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            barrier.wait()
            results.append(services.attempt_start(exam=paper.exam, student=alice).pk)
        except BaseException as exc:  # reported below, in the test thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert len(set(results)) == 1
    assert Attempt.objects.filter(student=alice).count() == 1
