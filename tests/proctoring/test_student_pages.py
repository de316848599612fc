"""The student's proctoring pages: consent, face enrolment endpoints and the pre-exam system check."""

from __future__ import annotations

from datetime import timedelta

import cv2
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from exams.models import Attempt
from proctoring.models import CONSENT_NOTICE_VERSION, ConsentRecord, FaceTemplate
from proctoring.selectors import consent_given
from proctoring.services.consent import consent_record
from tests.conftest import service_missing
from tests.factories import ExamFactory, StudentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def alice(client):
    user = StudentFactory(username="alice")
    client.force_login(user)
    return user


@pytest.fixture
def consenting_alice(alice):
    consent_record(user=alice, accepted=True)
    return alice


def jpeg(image: np.ndarray) -> SimpleUploadedFile:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return SimpleUploadedFile("frame.jpg", data.tobytes(), content_type="image/jpeg")


def astronaut_640() -> np.ndarray:
    from skimage import data

    rgb = data.astronaut()  # 512x512 RGB, one clear face (public domain)
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[:, 80:560] = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), (480, 480))
    return frame


@pytest.fixture
def analyzer_ready():
    from proctoring.vision.packs import ModelPackError
    from proctoring.vision.pipeline import get_analyzer

    try:
        get_analyzer().load()
    except ModelPackError as exc:
        service_missing(f"the default model pack is not installed ({exc})")


def enrol_without_camera(user) -> FaceTemplate:
    """A template as the current embedding model would have made it (the vector itself does not matter here)."""
    from proctoring.selectors import current_embedding_model

    pack, model_id = current_embedding_model()
    return FaceTemplate.objects.create(user=user, pack=pack, model_id=model_id, embedding=b"\0" * 16, dim=4)


def open_attempt(student, **exam_fields) -> Attempt:
    exam = ExamFactory(**exam_fields)
    now = timezone.now()
    return Attempt.objects.create(exam=exam, student=student, started_at=now, deadline=now + timedelta(hours=1))


# Consent


def test_consent_page_explains_what_is_captured_who_sees_it_and_for_how_long(client, alice):
    response = client.get(reverse("proctoring:consent"))
    assert response.status_code == 200
    page = response.content.decode()
    for heading in ("What is captured", "Why", "Who sees it", "How long it is kept"):
        assert heading in page
    assert CONSENT_NOTICE_VERSION in page


def test_alice_accepting_consent_is_recorded_with_the_notice_version_and_goes_on_to_enrolment(client, alice):
    response = client.post(reverse("proctoring:consent"), {"decision": "accept", "understood": "on"})
    assert response.status_code == 302
    assert response["Location"] == reverse("proctoring:enrol")
    record = ConsentRecord.objects.get(user=alice)
    assert record.accepted and record.notice_version == CONSENT_NOTICE_VERSION
    assert abs((timezone.now() - record.recorded_at).total_seconds()) < 60


def test_accepting_without_ticking_the_box_records_nothing_and_says_why(client, alice):
    response = client.post(reverse("proctoring:consent"), {"decision": "accept"})
    assert response.status_code == 200
    assert "Please tick the box" in response.content.decode()
    assert not ConsentRecord.objects.exists()


def test_declining_is_recorded_and_explains_the_alternative(client, alice):
    response = client.post(reverse("proctoring:consent"), {"decision": "decline"})
    assert response.status_code == 200
    assert "contact your instructor" in response.content.decode()
    assert ConsentRecord.objects.get(user=alice).accepted is False
    assert not consent_given(user=alice)


def test_the_latest_answer_decides(alice):
    consent_record(user=alice, accepted=True)
    consent_record(user=alice, accepted=False)
    assert not consent_given(user=alice)
    assert ConsentRecord.objects.filter(user=alice).count() == 2


def test_consent_to_an_older_notice_is_not_consent_to_the_current_one(alice):
    consent_record(user=alice, accepted=True, version="2020-01")
    assert not consent_given(user=alice)


def test_consent_ignores_a_next_url_on_another_site(client, alice):
    response = client.post(
        reverse("proctoring:consent"), {"decision": "accept", "understood": "on", "next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("proctoring:enrol")


def test_consent_page_needs_sign_in(client):
    response = client.get(reverse("proctoring:consent"))
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


# Enrolment


def test_enrolment_page_sends_alice_to_consent_first(client, alice):
    response = client.get(reverse("proctoring:enrol"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("proctoring:consent") + "?next=")


def test_enrolment_page_has_a_progress_indicator_and_a_live_guidance_region(client, consenting_alice):
    page = client.get(reverse("proctoring:enrol")).content.decode()
    assert '<progress id="enrol-progress" max="5" value="0"' in page
    assert "0 of 5 good photos" in page
    assert 'id="guidance" class="guidance" role="status" aria-live="polite"' in page
    assert "proctoring/enrol.js" in page


def test_enrolment_page_shows_the_current_enrolment_date_for_re_enrolment(client, consenting_alice):
    FaceTemplate.objects.create(
        user=consenting_alice, pack="default", model_id="m", embedding=b"\0" * 16, dim=4, frames_used=5
    )
    page = client.get(reverse("proctoring:enrol")).content.decode()
    assert "You enrolled your face on" in page
    assert "Enrol again" in page


@pytest.mark.parametrize("name", ["enrol_frame", "enrol_finish"])
def test_enrolment_endpoints_answer_anonymous_visitors_with_json_401(client, name):
    response = client.post(reverse(f"proctoring:{name}"))
    assert response.status_code == 401
    assert response.json()["reason"] == "not_signed_in"


@pytest.mark.parametrize("name", ["enrol_frame", "enrol_finish"])
def test_enrolment_endpoints_refuse_a_student_without_consent(client, alice, name):
    response = client.post(reverse(f"proctoring:{name}"), {"frame": jpeg(astronaut_640())})
    assert response.status_code == 403
    assert response.json() == {
        "ok": False,
        "reason": "no_consent",
        "message": "Please read and accept the proctoring notice before enrolling your face.",
    }


def test_enrolment_frame_endpoint_refuses_get(client, consenting_alice):
    assert client.get(reverse("proctoring:enrol_frame")).status_code == 405


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"this is not an image", "unsupported_format"),
        (b"\xff\xd8\xff\xe0" + b"\0" * 200, "corrupt"),
        (b"", "empty"),
    ],
)
def test_a_bad_image_gets_a_clear_json_error(client, consenting_alice, payload, reason):
    upload = SimpleUploadedFile("frame.jpg", payload, content_type="image/jpeg")
    response = client.post(reverse("proctoring:enrol_frame"), {"frame": upload})
    assert response.status_code == 400
    body = response.json()
    assert body["ok"] is False and body["reason"] == reason
    assert body["message"]


def test_a_request_without_a_photo_gets_a_clear_json_error(client, consenting_alice):
    response = client.post(reverse("proctoring:enrol_frame"))
    assert response.status_code == 400
    assert response.json()["message"] == "No photo arrived. Please try again."


def test_finish_with_a_bad_photo_names_which_one(client, consenting_alice):
    good = jpeg(astronaut_640())
    bad = SimpleUploadedFile("frame.jpg", b"garbage", content_type="image/jpeg")
    response = client.post(reverse("proctoring:enrol_finish"), {"frames": [good, bad]})
    assert response.status_code == 400
    assert response.json()["message"].startswith("Photo 2:")


def test_finish_refuses_more_photos_than_a_webcam_session_takes(client, consenting_alice):
    frames = [SimpleUploadedFile(f"f{i}.jpg", b"x", content_type="image/jpeg") for i in range(11)]
    response = client.post(reverse("proctoring:enrol_finish"), {"frames": frames})
    assert response.status_code == 400
    assert response.json()["reason"] == "too_many"


def test_a_clear_face_passes_the_frame_check(client, consenting_alice, analyzer_ready):
    response = client.post(reverse("proctoring:enrol_frame"), {"frame": jpeg(astronaut_640())})
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True, body
    assert len(body["face_box"]) == 4
    assert 40 < body["brightness"] < 220


def test_an_empty_room_gets_calm_guidance(client, consenting_alice, analyzer_ready):
    room = np.full((480, 640, 3), 140, np.uint8)
    response = client.post(reverse("proctoring:enrol_frame"), {"frame": jpeg(room)})
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is False
    assert body["reason"] == "no_face"
    assert body["message"]


def test_alice_enrols_from_five_photos_and_re_enrolling_replaces_her_template(client, consenting_alice, analyzer_ready):
    frames = [jpeg(astronaut_640()) for _ in range(5)]
    response = client.post(reverse("proctoring:enrol_finish"), {"frames": frames})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ok"] is True and body["accepted"] == 5
    first = FaceTemplate.objects.get(user=consenting_alice)

    frames = [jpeg(astronaut_640()) for _ in range(3)]
    response = client.post(reverse("proctoring:enrol_finish"), {"frames": frames})
    assert response.json()["ok"] is True
    again = FaceTemplate.objects.get(user=consenting_alice)
    assert again.pk == first.pk and again.frames_used == 3


def test_enrolment_from_photos_without_a_face_fails_with_a_reason(client, consenting_alice, analyzer_ready):
    room = np.full((480, 640, 3), 140, np.uint8)
    response = client.post(reverse("proctoring:enrol_finish"), {"frames": [jpeg(room) for _ in range(3)]})
    assert response.status_code == 422
    body = response.json()
    assert body["ok"] is False and body["accepted"] == 0
    assert len(body["rejections"]) == 3
    assert not FaceTemplate.objects.filter(user=consenting_alice).exists()


# System check


def test_system_check_page_lists_each_check_with_text_and_a_continue_link(client, consenting_alice):
    enrol_without_camera(consenting_alice)
    attempt = open_attempt(consenting_alice)
    page = client.get(reverse("proctoring:check", args=[attempt.pk])).content.decode()
    for item in ("Camera:", "Lighting:", "Framing:", "Connection:"):
        assert item in page
    assert 'data-ws-path="/ws/check/"' in page  # the check's socket records nothing against the attempt
    assert f'href="/attempts/{attempt.pk}/"' in page
    assert "proctoring/check.js" in page


def test_system_check_sends_alice_to_re_enrol_when_her_enrolment_came_from_another_model(client, consenting_alice):
    FaceTemplate.objects.create(user=consenting_alice, pack="default", model_id="retired-model", embedding=b"", dim=4)
    attempt = open_attempt(consenting_alice)
    response = client.get(reverse("proctoring:check", args=[attempt.pk]))
    assert response["Location"].startswith(reverse("proctoring:enrol") + "?next=")
    page = client.get(response["Location"]).content.decode()
    assert "Please enrol again." in page


def test_system_check_of_bobs_attempt_is_not_found_for_alice(client, consenting_alice):
    bob = StudentFactory(username="bob")
    attempt = open_attempt(bob)
    assert client.get(reverse("proctoring:check", args=[attempt.pk])).status_code == 404


def test_system_check_sends_alice_to_enrol_first_and_back_again(client, consenting_alice):
    attempt = open_attempt(consenting_alice)
    response = client.get(reverse("proctoring:check", args=[attempt.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("proctoring:enrol") + "?next=")
    assert f"check%2F{attempt.pk}%2F" in response["Location"]


def test_system_check_sends_alice_to_consent_before_anything(client, alice):
    attempt = open_attempt(alice)
    response = client.get(reverse("proctoring:check", args=[attempt.pk]))
    assert response["Location"].startswith(reverse("proctoring:consent") + "?next=")


def test_an_unproctored_exam_needs_no_check(client, alice):
    attempt = open_attempt(alice, proctoring_enabled=False)
    response = client.get(reverse("proctoring:check", args=[attempt.pk]))
    assert response.status_code == 200
    assert "not proctored" in response.content.decode()


def test_the_exam_panel_renders_its_live_regions_and_meter(rf, alice):
    from django.template.loader import render_to_string

    attempt = open_attempt(alice)
    request = rf.get(f"/attempts/{attempt.pk}/")
    request.user = alice
    html = render_to_string("proctoring/panel.html", {"attempt": attempt}, request=request)
    assert f'data-ws-path="/ws/proctor/{attempt.pk}/"' in html
    assert 'role="status" aria-live="polite"' in html
    assert 'role="alert" aria-live="assertive"' in html
    assert '<meter id="proctor-attention"' in html
    assert "proctoring/panel.js" in html


def test_a_photo_flood_is_refused_cheaply_and_calmly_before_any_image_is_decoded(client, consenting_alice):
    from proctoring.views.student import CHECK_LIMIT

    def post():
        return client.post(reverse("proctoring:enrol_frame"), {"frame": SimpleUploadedFile("f.jpg", b"", "image/jpeg")})

    answers = [post() for _ in range(CHECK_LIMIT)]
    assert {a.status_code for a in answers} == {400}  # each one read (and found empty), none refused
    refused = post()
    assert refused.status_code == 429
    assert refused.json()["reason"] == "rate_limited"
    assert "wait a few seconds" in refused.json()["message"]


def test_one_students_flood_does_not_slow_down_another(client, consenting_alice):
    from proctoring.views.student import CHECK_LIMIT

    for _ in range(CHECK_LIMIT + 1):
        client.post(reverse("proctoring:enrol_frame"), {"frame": SimpleUploadedFile("f.jpg", b"", "image/jpeg")})
    bob = StudentFactory(username="bob")
    consent_record(user=bob, accepted=True)
    client.force_login(bob)
    answer = client.post(reverse("proctoring:enrol_frame"), {"frame": SimpleUploadedFile("f.jpg", b"", "image/jpeg")})
    assert answer.status_code == 400 and answer.json()["reason"] == "empty"


# The system check before the exam clock starts (issue 12)


def test_alice_can_check_her_camera_before_she_starts_and_her_time_has_not_started(client, consenting_alice):
    from exams.models import Enrollment

    enrol_without_camera(consenting_alice)
    exam = ExamFactory(proctoring_enabled=True)
    Enrollment.objects.create(exam=exam, student=consenting_alice)
    page = client.get(reverse("proctoring:check_exam", args=[exam.pk])).content.decode()
    assert 'data-ws-path="/ws/check/"' in page and "proctoring/check.js" in page
    assert "Your exam time has not started" in page
    assert f'action="{reverse("exam_start", args=[exam.pk])}"' in page  # Start is the last step
    assert not Attempt.objects.filter(student=consenting_alice).exists()


def test_the_check_before_start_needs_consent_and_enrolment_and_the_exam_to_be_yours(client, alice):
    from exams.models import Enrollment

    exam = ExamFactory(proctoring_enabled=True)
    client.force_login(alice)
    assert client.get(reverse("proctoring:check_exam", args=[exam.pk])).status_code == 404  # not enrolled
    Enrollment.objects.create(exam=exam, student=alice)
    response = client.get(reverse("proctoring:check_exam", args=[exam.pk]))
    assert response.status_code == 302 and response["Location"].startswith(reverse("proctoring:consent"))
