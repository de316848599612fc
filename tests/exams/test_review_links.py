"""The results and manage pages lead to the proctoring pages that belong to them."""

from __future__ import annotations

from django.utils import timezone

from exams import services
from proctoring.models import ProctoringSession
from tests.factories import EnrollmentFactory, ExamFactory


def _finished_attempt(exam, student):
    attempt = services.attempt_start(exam=exam, student=student)
    return services.attempt_submit(attempt=attempt)


def test_alices_results_link_her_confirmed_proctoring_notes(client, paper, alice):
    attempt = _finished_attempt(paper.exam, alice)
    client.force_login(alice)
    body = client.get(f"/attempts/{attempt.id}/results/").content.decode()
    assert f'href="/my/attempts/{attempt.id}/flags/"' in body
    # The link leads somewhere alice may go.
    assert client.get(f"/my/attempts/{attempt.id}/flags/").status_code == 200


def test_results_of_an_unproctored_exam_have_no_proctoring_link(client, alice):
    exam = ExamFactory(proctoring_enabled=False)
    EnrollmentFactory(exam=exam, student=alice)
    attempt = _finished_attempt(exam, alice)
    client.force_login(alice)
    body = client.get(f"/attempts/{attempt.id}/results/").content.decode()
    assert "/flags/" not in body


def test_an_attempt_that_was_proctored_keeps_its_link_after_proctoring_is_switched_off(client, paper, alice):
    attempt = _finished_attempt(paper.exam, alice)
    ProctoringSession.objects.create(
        attempt=attempt, status=ProctoringSession.Status.ENDED, started_at=timezone.now(), ended_at=timezone.now()
    )
    paper.exam.proctoring_enabled = False
    paper.exam.save()
    client.force_login(alice)
    body = client.get(f"/attempts/{attempt.id}/results/").content.decode()
    assert f'href="/my/attempts/{attempt.id}/flags/"' in body


def test_ivans_manage_page_links_the_review_rescore_and_monitor_pages(client, paper, ivan):
    client.force_login(ivan)
    body = client.get(f"/exams/{paper.exam.id}/").content.decode()
    exam_id = paper.exam.id
    for url in (f"/review/exams/{exam_id}/", f"/review/exams/{exam_id}/rescore/", f"/review/exams/{exam_id}/monitor/"):
        assert f'href="{url}"' in body
        assert client.get(url).status_code == 200, url


def test_the_manage_page_of_an_unproctored_exam_has_no_review_links(client, ivan):
    exam = ExamFactory(owner=ivan, proctoring_enabled=False)
    client.force_login(ivan)
    body = client.get(f"/exams/{exam.id}/").content.decode()
    assert "/review/exams/" not in body
