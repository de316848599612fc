"""Photo ID at enrolment (issue 11): the student holds an ID card up beside their face; the face printed on it is
matched with the enrolment, and the picture kept as evidence. Real default pack, real photos.

alice is Eileen Collins (skimage's astronaut), enrolled from webcam-like versions of her photo. Her card is built in
the test (tests/idcard.py): her portrait printed on a card-like image with text and a gloss, tilted a little, held
beside her face in a 640x480 frame. Grace Hopper's portrait on the card stands for someone else's ID.
"""

# ruff: noqa: F811 - the fixtures imported from test_enrolment are parameters here
from __future__ import annotations

from datetime import timedelta

import cv2
import pytest
from django.urls import reverse
from django.utils import timezone

from exams.models import Exam
from proctoring.models import EvidenceView, FaceTemplate
from proctoring.services.consent import consent_record
from proctoring.services.enrolment import face_enrol
from proctoring.services.evidence import private_path
from proctoring.services.identity import enrolment_decide, photo_id_record
from proctoring.services.retention import evidence_purge
from proctoring.vision.idphoto import MIN_ID_FACE_PX, id_faces, width
from tests.factories import AdminFactory, EnrollmentFactory, ExamFactory, InstructorFactory, StudentFactory
from tests.idcard import holding_id, id_card, portrait
from tests.proctoring.test_enrolment import alice_frames, analyzer, evalset  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db(transaction=True)
Verification = FaceTemplate.Verification


@pytest.fixture(scope="module")
def cards(evalset, analyzer):
    """Cards printed with each person's portrait."""
    made = {}
    for name in ("astronaut", "grace_hopper", "webcam_man"):
        photo = evalset.load(name)
        made[name] = id_card(portrait(photo, analyzer.detector.detect(photo)[0].box))
    return made


@pytest.fixture
def alice(alice_frames, analyzer):
    student = StudentFactory(username="alice", first_name="Alice", last_name="Adams")
    consent_record(user=student, accepted=True)
    assert face_enrol(user=student, images=alice_frames, analyzer=analyzer).template is not None
    return student


@pytest.fixture
def astronaut(evalset):
    return evalset.load("astronaut")


def jpeg(image) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return data.tobytes()


def test_both_faces_are_found_and_the_printed_one_is_the_smaller(analyzer, astronaut, cards):
    found = id_faces(analyzer.detector, holding_id(astronaut, cards["astronaut"]))
    assert found.count == 2
    assert width(found.live) > 2 * width(found.card) and width(found.card) >= MIN_ID_FACE_PX
    assert found.card.box[0] > 360  # the card is held up on the right of the frame (from x = 368)


def test_her_own_id_matches_her_enrolment_and_is_kept_as_evidence(alice, analyzer, astronaut, cards):
    check = photo_id_record(user=alice, image=holding_id(astronaut, cards["astronaut"]), analyzer=analyzer)
    assert check.ok, check.message
    template = FaceTemplate.objects.get(user=alice)
    assert template.id_similarity == check.similarity >= analyzer.identity_threshold
    assert template.verification == Verification.MATCHED
    assert template.similarity is None  # no reference photo: the ID alone was compared
    assert template.threshold == analyzer.identity_threshold
    assert private_path(template.id_photo_path).read_bytes()[:2] == b"\xff\xd8"
    assert template.id_captured_at is not None


@pytest.mark.parametrize("card_width", [260, 320])
def test_someone_elses_id_is_a_mismatch_that_waits_for_a_person(alice, analyzer, astronaut, cards, card_width):
    check = photo_id_record(
        user=alice, image=holding_id(astronaut, cards["grace_hopper"], card_width=card_width), analyzer=analyzer
    )
    assert check.ok  # a usable picture: kept, and a person decides
    template = FaceTemplate.objects.get(user=alice)
    assert template.id_similarity < 0.2 < analyzer.identity_threshold
    assert template.verification == Verification.MISMATCH
    enrolment_decide(student_id=alice.pk, actor=AdminFactory(), action="approve")
    # A decision stands when the student shows an ID again; only re-enrolling resets it.
    photo_id_record(user=alice, image=holding_id(astronaut, cards["grace_hopper"]), analyzer=analyzer)
    assert FaceTemplate.objects.get(user=alice).verification == Verification.APPROVED


def test_every_comparison_must_match(alice, analyzer, astronaut, cards, evalset):
    """A reference photo that matches does not cover for an ID that does not, nor the other way round."""
    from proctoring.services.identity import reference_photo_set

    reference_photo_set(user=alice, data=jpeg(astronaut), added_by=None, source="admin", analyzer=analyzer)
    assert FaceTemplate.objects.get(user=alice).verification == Verification.MATCHED
    photo_id_record(user=alice, image=holding_id(astronaut, cards["grace_hopper"]), analyzer=analyzer)
    template = FaceTemplate.objects.get(user=alice)
    assert template.similarity >= template.threshold > template.id_similarity
    assert template.verification == Verification.MISMATCH


@pytest.mark.parametrize(
    ("scene", "reason"),
    [
        ("face only", "no_card"),
        ("the card alone", "no_card"),
        ("nobody", "no_face"),
        ("card far away", "card_too_small"),
        ("someone else holds it", "different_person"),
        ("a crowd", "too_many"),
    ],
)
def test_a_frame_that_cannot_be_used_says_what_to_change_and_keeps_nothing(
    alice, analyzer, astronaut, cards, evalset, scene, reason
):
    frames = {
        "face only": lambda: evalset.webcam_frame(astronaut),
        "the card alone": lambda: holding_id(evalset.load("cat"), cards["astronaut"]),
        "nobody": lambda: evalset.webcam_frame(evalset.load("cat")),
        "card far away": lambda: holding_id(astronaut, cards["astronaut"], card_width=150),
        "someone else holds it": lambda: holding_id(evalset.load("grace_hopper"), cards["astronaut"]),
        "a crowd": lambda: holding_id(evalset.load("friends"), cards["astronaut"]),
    }
    check = photo_id_record(user=alice, image=frames[scene](), analyzer=analyzer)
    assert (check.ok, check.reason) == (False, reason), check.message
    assert check.message.endswith(".") and "error" not in check.message.lower()
    template = FaceTemplate.objects.get(user=alice)
    assert (template.id_photo_path, template.id_similarity, template.verification) == ("", None, "unverified")


def test_re_enrolling_forgets_the_id_and_its_picture(alice, alice_frames, analyzer, astronaut, cards):
    photo_id_record(user=alice, image=holding_id(astronaut, cards["astronaut"]), analyzer=analyzer)
    picture = private_path(FaceTemplate.objects.get(user=alice).id_photo_path)
    assert picture.exists()
    face_enrol(user=alice, images=alice_frames, analyzer=analyzer)
    template = FaceTemplate.objects.get(user=alice)
    assert (template.id_photo_path, template.id_similarity, template.id_captured_at) == ("", None, None)
    assert template.verification == Verification.UNVERIFIED
    assert not picture.exists()


def test_retention_deletes_the_picture_and_keeps_that_it_was_shown(alice, analyzer, astronaut, cards):
    photo_id_record(user=alice, image=holding_id(astronaut, cards["astronaut"]), analyzer=analyzer)
    template = FaceTemplate.objects.get(user=alice)
    picture = private_path(template.id_photo_path)
    assert evidence_purge(older_than_days=30, dry_run=True).id_photos == 0
    later = template.id_captured_at + timedelta(days=31)
    # The student sat an exam inside the window, so the enrolment itself stays.
    ExamFactory(published=True).attempts.create(student=alice, started_at=later, deadline=later)
    assert evidence_purge(older_than_days=30, now=later, dry_run=True).id_photos == 1
    report = evidence_purge(older_than_days=30, now=later)
    assert (report.id_photos, report.face_templates) == (1, 0)
    template.refresh_from_db()
    assert template.id_photo_path == "" and template.id_similarity is not None and template.id_captured_at
    assert not picture.exists()


def test_the_exam_holds_the_student_until_the_id_is_shown(client, alice, analyzer, astronaut, cards):
    now = timezone.now()
    exam = ExamFactory(
        published=True,
        opens_at=now - timedelta(hours=1),
        closes_at=now + timedelta(hours=2),
        photo_id_required=True,
        identity_assurance=Exam.IdentityAssurance.MATCHED,
    )
    EnrollmentFactory(exam=exam, student=alice)
    client.force_login(alice)
    start = client.post(reverse("exam_start", args=[exam.pk]))
    assert start.status_code == 302 and start["Location"].startswith(reverse("proctoring:enrol_id"))
    assert not exam.attempts.exists()
    page = client.get(start["Location"]).content.decode()
    assert "Hold your photo ID" in page and "Your exam time has not started" in page

    url = reverse("proctoring:enrol_id_frame")
    bad = client.post(url, {"frame": _upload(holding_id(astronaut, cards["astronaut"], card_width=150))})
    assert bad.status_code == 422 and bad.json()["reason"] == "card_too_small"
    good = client.post(url, {"frame": _upload(holding_id(astronaut, cards["astronaut"]))})
    assert good.status_code == 200 and good.json()["ok"] and good.json()["captured_at"]
    assert client.post(reverse("exam_start", args=[exam.pk]))["Location"].startswith("/attempts/")


def test_the_queue_shows_the_id_beside_the_enrolment_to_her_instructor_only(client, alice, analyzer, astronaut, cards):
    teacher = InstructorFactory()
    EnrollmentFactory(exam=ExamFactory(owner=teacher), student=alice)
    photo_id_record(user=alice, image=holding_id(astronaut, cards["grace_hopper"]), analyzer=analyzer)
    picture = reverse("proctoring:identity_photo", args=[alice.pk, "id"])
    client.force_login(teacher)
    page = client.get(reverse("review:identity")).content.decode()
    assert picture in page and "similarity to the photo ID 0." in page and "Does not match" in page
    image = client.get(picture)
    assert image.status_code == 200 and image["Content-Type"] == "image/jpeg"
    assert EvidenceView.objects.filter(viewer=teacher, snapshot_ref=f"id-photo:user:{alice.pk}").exists()
    client.force_login(InstructorFactory())
    assert client.get(picture).status_code == 404


def _upload(image):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("id.jpg", jpeg(image), content_type="image/jpeg")
