"""Who enrolled (issue 11): reference photos, the check of an enrolment against them, a person's decision, the bulk
import, the exam's required identity assurance, and who may see and decide what. Real default pack, real photos.

alice is Eileen Collins (skimage's astronaut): her reference is the original photo, her enrolment the webcam-like
versions of it (no registry package has two photos of one person; bench/evalset.json says so). Grace Hopper's photo
is someone else's reference.
"""

# ruff: noqa: F811 - the fixtures imported from test_enrolment are parameters here
from __future__ import annotations

import io
import zipfile
from datetime import timedelta

import cv2
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from exams.models import Exam
from exams.selectors import exam_setup_missing
from proctoring.decisions import ReviewError
from proctoring.models import EnrolmentDecision, EvidenceView, FaceTemplate, ReferencePhoto
from proctoring.services.consent import consent_record
from proctoring.services.enrolment import face_enrol
from proctoring.services.evidence import private_path
from proctoring.services.identity import (
    IdentityError,
    enrolment_decide,
    identity_queue,
    reference_photo_set,
    reference_photos_import,
)
from tests.factories import AdminFactory, EnrollmentFactory, ExamFactory, InstructorFactory, StudentFactory
from tests.proctoring.test_enrolment import alice_frames, analyzer, evalset  # noqa: F401 - fixtures

# Transactions commit for real: the old photo files go in on_commit callbacks.
pytestmark = pytest.mark.django_db(transaction=True)
Verification = FaceTemplate.Verification


def jpeg(image) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return data.tobytes()


@pytest.fixture
def people(evalset):
    return {name: jpeg(evalset.load(name)) for name in ("astronaut", "grace_hopper", "zidane")}


@pytest.fixture
def alice():
    return StudentFactory(username="alice", first_name="Alice", last_name="Adams")


@pytest.fixture
def charlie():
    return InstructorFactory(username="charlie")


def enrol(user, frames, analyzer):
    result = face_enrol(user=user, images=frames, analyzer=analyzer)
    assert result.template is not None, result.rejections
    return FaceTemplate.objects.get(user=user)


def test_a_reference_of_the_same_person_matches_and_of_another_does_not(alice, people, alice_frames, analyzer):
    template = enrol(alice, alice_frames, analyzer)
    assert template.verification == Verification.UNVERIFIED and template.similarity is None  # nothing to compare
    assert private_path(template.photo_path).read_bytes()[:3] == b"\xff\xd8\xff"  # one enrolment photo kept

    reference_photo_set(user=alice, data=people["astronaut"], added_by=None, source="command", analyzer=analyzer)
    template.refresh_from_db()
    assert template.verification == Verification.MATCHED
    assert template.similarity >= template.threshold == analyzer.identity_threshold

    # Grace Hopper's photo as alice's reference: the same enrolment no longer matches, with the figures kept.
    old_reference = ReferencePhoto.objects.get(user=alice).path
    reference_photo_set(user=alice, data=people["grace_hopper"], added_by=None, source="command", analyzer=analyzer)
    template.refresh_from_db()
    assert template.verification == Verification.MISMATCH
    assert template.similarity < template.threshold
    assert not private_path(old_reference).exists()  # the replaced reference photo is gone


def test_a_reference_must_show_one_usable_face(alice, people, analyzer, evalset):
    with pytest.raises(IdentityError, match="2 faces"):
        reference_photo_set(user=alice, data=people["zidane"], added_by=None, source="admin", analyzer=analyzer)
    with pytest.raises(IdentityError, match="no face"):
        reference_photo_set(
            user=alice, data=jpeg(evalset.load("cat")), added_by=None, source="admin", analyzer=analyzer
        )
    with pytest.raises(IdentityError, match="cannot be used"):
        reference_photo_set(user=alice, data=b"not an image", added_by=None, source="admin", analyzer=analyzer)
    with pytest.raises(IdentityError, match="not a student"):
        reference_photo_set(
            user=InstructorFactory(), data=people["astronaut"], added_by=None, source="admin", analyzer=analyzer
        )
    assert not ReferencePhoto.objects.exists()


def test_re_enrolment_resets_a_decision_and_is_matched_again(alice, charlie, people, alice_frames, analyzer):
    EnrollmentFactory(exam=ExamFactory(owner=charlie), student=alice)
    reference_photo_set(user=alice, data=people["grace_hopper"], added_by=None, source="admin", analyzer=analyzer)
    template = enrol(alice, alice_frames, analyzer)
    assert template.verification == Verification.MISMATCH
    first_photo = template.photo_path
    enrolment_decide(student_id=alice.pk, actor=charlie, action="approve", note="Known to me; new haircut.")
    template.refresh_from_db()
    assert (template.verification, template.verified_by, template.verification_note) == (
        Verification.APPROVED, charlie, "Known to me; new haircut.")  # fmt: skip
    # A new reference photo does not overturn a person's decision...
    reference_photo_set(user=alice, data=people["astronaut"], added_by=None, source="admin", analyzer=analyzer)
    template.refresh_from_db()
    assert template.verification == Verification.APPROVED
    # ...but a new enrolment is a new face: checked afresh, and the old enrolment photo is gone.
    template = enrol(alice, alice_frames, analyzer)
    assert template.verification == Verification.MATCHED and template.verified_by is None
    assert template.photo_path != first_photo and not private_path(first_photo).exists()


def test_decisions_are_audited_and_only_for_ones_own_students(alice, charlie, people, alice_frames, analyzer):
    diana = InstructorFactory(username="diana")
    EnrollmentFactory(exam=ExamFactory(owner=charlie), student=alice)
    enrol(alice, alice_frames, analyzer)
    with pytest.raises(ReviewError, match="No such enrolment"):
        enrolment_decide(student_id=alice.pk, actor=diana, action="approve")
    with pytest.raises(ReviewError, match="No such enrolment"):
        enrolment_decide(student_id=alice.pk, actor=StudentFactory(), action="approve")
    with pytest.raises(ReviewError, match="approve or reject"):
        enrolment_decide(student_id=alice.pk, actor=charlie, action="maybe")
    enrolment_decide(student_id=alice.pk, actor=charlie, action="reject", note="Not the student I know.")
    enrolment_decide(student_id=alice.pk, actor=AdminFactory(), action="approve", note="Checked her card in person.")
    trail = list(EnrolmentDecision.objects.order_by("at", "id").values_list("actor__username", "action", "from_status"))
    assert [(a, s) for _, a, s in trail] == [("reject", "unverified"), ("approve", "rejected")]
    assert trail[0][0] == "charlie"
    # The queue: charlie sees his student; diana sees nobody.
    assert [t.user for t in identity_queue(actor=charlie)] == [alice]
    assert identity_queue(actor=diana) == []


def test_the_exam_gate_follows_the_required_assurance(alice, charlie, people, alice_frames, analyzer):
    now = timezone.now()
    exam = ExamFactory(
        owner=charlie, published=True, opens_at=now - timedelta(hours=1), closes_at=now + timedelta(hours=2)
    )
    EnrollmentFactory(exam=exam, student=alice)
    consent_record(user=alice, accepted=True)
    enrol(alice, alice_frames, analyzer)
    assert exam_setup_missing(exam=exam, student=alice) is None  # the default asks nothing more

    exam.identity_assurance = Exam.IdentityAssurance.MATCHED
    exam.save()
    assert exam_setup_missing(exam=exam, student=alice) == "identity"  # no reference to match
    reference_photo_set(user=alice, data=people["grace_hopper"], added_by=None, source="admin", analyzer=analyzer)
    assert exam_setup_missing(exam=exam, student=alice) == "identity"  # a mismatch waits for a person...
    enrolment_decide(student_id=alice.pk, actor=charlie, action="approve")
    assert exam_setup_missing(exam=exam, student=alice) is None  # ...whose approval lets her start

    exam.identity_assurance = Exam.IdentityAssurance.APPROVED
    exam.save()
    assert exam_setup_missing(exam=exam, student=alice) is None
    reference_photo_set(user=alice, data=people["astronaut"], added_by=None, source="admin", analyzer=analyzer)
    enrol(alice, alice_frames, analyzer)  # matched now, but this exam wants a person
    assert FaceTemplate.objects.get(user=alice).verification == Verification.MATCHED
    assert exam_setup_missing(exam=exam, student=alice) == "identity"


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_a_bulk_import_attaches_all_or_nothing_and_names_every_bad_file(alice, people, analyzer, tmp_path):
    StudentFactory(username="bob")
    bad = [("alice.jpg", people["astronaut"]), ("bob.jpg", people["zidane"]), ("carol.jpg", people["grace_hopper"]),
           ("notes.txt", b"hello"), ("ALICE.png", people["astronaut"])]  # fmt: skip
    report = reference_photos_import(files=bad, added_by=None, source="import", analyzer=analyzer)
    assert not report.ok and not ReferencePhoto.objects.exists()
    assert [e.split(":")[0] for e in report.errors] == ["bob.jpg", "carol.jpg", "notes.txt", "ALICE.png"]
    assert "2 faces" in report.errors[0] and "no student with the username 'carol'" in report.errors[1]

    good = [("alice.jpg", people["astronaut"]), ("bob.jpg", people["grace_hopper"])]
    assert reference_photos_import(files=good, added_by=None, source="import", dry_run=True, analyzer=analyzer).ok
    assert not ReferencePhoto.objects.exists()  # a dry run attaches nothing
    report = reference_photos_import(files=good, added_by=None, source="import", analyzer=analyzer)
    assert report.attached == ["alice", "bob"]
    assert set(ReferencePhoto.objects.values_list("user__username", flat=True)) == {"alice", "bob"}


def test_the_command_reads_a_folder_or_a_zip(alice, people, tmp_path, analyzer):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "alice.jpg").write_bytes(people["zidane"])
    with pytest.raises(CommandError, match="Nothing was attached"):
        call_command("import_reference_photos", str(folder))
    archive = tmp_path / "photos.zip"
    archive.write_bytes(zipped({"alice.jpg": people["astronaut"], "__MACOSX/._alice.jpg": b"junk"}))
    out = io.StringIO()
    call_command("import_reference_photos", str(archive), stdout=out)
    assert "attached 1 reference photo" in out.getvalue()
    assert ReferencePhoto.objects.get(user=alice).source == "command"


def test_the_queue_page_shows_both_photos_and_decides(client, alice, charlie, people, alice_frames, analyzer):
    EnrollmentFactory(exam=ExamFactory(owner=charlie), student=alice)
    reference_photo_set(user=alice, data=people["grace_hopper"], added_by=None, source="admin", analyzer=analyzer)
    enrol(alice, alice_frames, analyzer)
    client.force_login(charlie)
    page = client.get(reverse("review:identity"))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Does not match the reference or ID photo" in body and "similarity to the reference 0." in body
    for kind in ("enrolment", "reference"):
        url = reverse("proctoring:identity_photo", args=[alice.pk, kind])
        assert url in body
        photo = client.get(url)
        assert photo.status_code == 200 and photo["Cache-Control"].startswith("private, no-store")
    assert set(EvidenceView.objects.values_list("snapshot_ref", flat=True)) == {
        f"enrolment-photo:user:{alice.pk}", f"reference-photo:user:{alice.pk}"}  # fmt: skip
    answer = client.post(reverse("review:identity"), {"student": alice.pk, "action": "approve", "note": "Ok"})
    assert answer.status_code == 302 and answer["Location"].endswith(f"#enrolment-{alice.pk}")
    assert FaceTemplate.objects.get(user=alice).verification == Verification.APPROVED

    # Someone else's instructor: no photos, no decisions, and the same 404 for an id that does not exist.
    client.force_login(InstructorFactory(username="diana"))
    assert client.get(reverse("proctoring:identity_photo", args=[alice.pk, "reference"])).status_code == 404
    assert client.post(reverse("review:identity"), {"student": alice.pk, "action": "reject"}).status_code == 404
    assert client.post(reverse("review:identity"), {"student": 99999, "action": "reject"}).status_code == 404
    client.force_login(alice)
    assert client.get(reverse("review:identity")).status_code == 404
    assert client.get(reverse("proctoring:identity_photo", args=[alice.pk, "enrolment"])).status_code == 404


def test_a_student_who_falls_short_is_told_calmly_what_is_missing(
    client, alice, charlie, people, alice_frames, analyzer
):
    now = timezone.now()
    exam = ExamFactory(
        owner=charlie,
        published=True,
        opens_at=now - timedelta(hours=1),
        closes_at=now + timedelta(hours=2),
        identity_assurance=Exam.IdentityAssurance.MATCHED,
    )
    EnrollmentFactory(exam=exam, student=alice)
    consent_record(user=alice, accepted=True)
    reference_photo_set(user=alice, data=people["grace_hopper"], added_by=None, source="admin", analyzer=analyzer)
    enrol(alice, alice_frames, analyzer)
    client.force_login(alice)
    start = client.post(reverse("exam_start", args=[exam.pk]))
    assert start.status_code == 302 and start["Location"] == reverse("proctoring:identity_exam", args=[exam.pk])
    assert not exam.attempts.exists()  # no clock running
    page = client.get(start["Location"]).content.decode()
    assert "Your exam time has not started" in page
    assert "This is not a decision about you: a person will compare the photos" in page
    enrolment_decide(student_id=alice.pk, actor=charlie, action="approve")
    assert client.post(reverse("exam_start", args=[exam.pk]))["Location"].startswith("/attempts/")


def test_deleting_an_account_removes_its_photos(alice, people, alice_frames, analyzer):
    reference_photo_set(user=alice, data=people["astronaut"], added_by=None, source="admin", analyzer=analyzer)
    template = enrol(alice, alice_frames, analyzer)
    files = [private_path(template.photo_path), private_path(ReferencePhoto.objects.get(user=alice).path)]
    assert all(f.exists() for f in files)
    alice.delete()
    assert not any(f.exists() for f in files)


def test_the_admin_upload_page_lists_every_bad_file_and_attaches_a_good_photo(client, alice, people, analyzer):
    """The admin's "Add reference photos": a zip with problems attaches nothing and lists each; one student's photo
    by username attaches it."""
    StudentFactory(username="bob")
    client.force_login(AdminFactory())
    url = reverse("admin:proctoring_referencephoto_upload")
    assert client.get(url).status_code == 200
    assert url in client.get(reverse("admin:proctoring_referencephoto_changelist")).content.decode()
    archive = io.BytesIO(zipped({"alice.jpg": people["astronaut"], "bob.jpg": people["zidane"], "carol.jpg": b"x"}))
    archive.name = "photos.zip"
    page = client.post(url, {"student": "", "file": archive})
    body = page.content.decode()
    assert page.status_code == 200 and "Nothing was attached" in body
    assert "bob.jpg: the photo shows 2 faces" in body and "carol.jpg: no student with the username" in body
    assert not ReferencePhoto.objects.exists()
    photo = io.BytesIO(people["astronaut"])
    photo.name = "card.jpg"
    done = client.post(url, {"student": "alice", "file": photo})
    assert done.status_code == 302
    assert ReferencePhoto.objects.get().user == alice
    client.force_login(InstructorFactory(username="ivan"))
    assert client.get(url).status_code == 302  # the admin sends anyone but staff to its login
