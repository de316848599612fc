from __future__ import annotations

import pytest

from exams import services
from tests.factories import AdminFactory


@pytest.fixture
def root(db):
    return AdminFactory(username="root")


def test_the_admin_pages_for_exams_open_for_an_admin(client, root, paper, alice):
    services.attempt_submit(attempt=services.attempt_start(exam=paper.exam, student=alice))
    client.force_login(root)
    urls = [
        "/admin/exams/exam/",
        f"/admin/exams/exam/{paper.exam.id}/change/",
        f"/admin/exams/question/{paper.single.id}/change/",
        "/admin/exams/enrollment/",
        "/admin/exams/attempt/",
        f"/admin/exams/attempt/?status__exact=submitted&exam__id__exact={paper.exam.id}",
        f"/admin/exams/attempt/{paper.exam.attempts.get().id}/change/",
    ]
    for url in urls:
        assert client.get(url).status_code == 200, url


def test_the_attempt_list_filters_by_status(client, root, paper, alice):
    services.attempt_start(exam=paper.exam, student=alice)
    client.force_login(root)
    in_progress = client.get("/admin/exams/attempt/?status__exact=in_progress")
    submitted = client.get("/admin/exams/attempt/?status__exact=submitted")
    assert in_progress.context["cl"].result_count == 1
    assert submitted.context["cl"].result_count == 0


def test_a_student_cannot_open_the_admin(client, alice):
    client.force_login(alice)
    response = client.get("/admin/exams/exam/")
    assert response.status_code == 302
