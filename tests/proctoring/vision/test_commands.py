"""`proctor_analyze` and `enrol_face` on real photo files: the exact JSON shape and the right answers."""

from __future__ import annotations

import json
from io import StringIO

import cv2
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from proctoring.models import FaceTemplate
from tests.factories import UserFactory

TOP_KEYS = {"faces", "identity", "pose", "gaze", "objects", "events", "timings_ms", "models"}


@pytest.fixture
def photo_file(tmp_path, photo, evalset):
    def write(name: str, *, transform: str | None = None, suffix: str = ".jpg"):
        image = photo(name)
        if transform:
            image = evalset.transform(image, transform)
        path = tmp_path / f"{name}-{transform or 'orig'}{suffix}"
        cv2.imwrite(str(path), image)
        return str(path)

    return write


def analyze(*args) -> dict:
    out = StringIO()
    call_command("proctor_analyze", *args, "--json", stdout=out)
    text = out.getvalue().strip()
    assert "\n" not in text  # one JSON object on one line
    return json.loads(text)


def test_one_face_without_enrolment(analyzer, photo_file):
    result = analyze(photo_file("astronaut"))
    assert set(result) == TOP_KEYS
    assert len(result["faces"]) == 1
    face = result["faces"][0]
    assert set(face) == {"box", "score"} and len(face["box"]) == 4 and 0.5 < face["score"] <= 1
    assert result["identity"] is None
    assert set(result["pose"]) == {"yaw", "pitch", "roll"}
    assert set(result["gaze"]) == {"yaw", "pitch"}
    assert result["objects"] == []
    assert result["events"] == ["AUTHORIZED"]
    assert result["timings_ms"]["total"] > 0
    assert result["models"]["pack"].startswith(f"{settings.MODEL_PACK}@")


def test_the_same_person_matches_her_reference_photo(analyzer, photo_file):
    result = analyze(photo_file("astronaut", transform="webcam_640"), "--enrolled", photo_file("astronaut"))
    assert set(result["identity"]) == {"similarity", "threshold", "match"}
    assert result["identity"]["match"] is True
    assert result["events"] == ["AUTHORIZED"]


def test_another_person_is_a_mismatch(analyzer, photo_file):
    result = analyze(
        photo_file("grace_hopper"), "--enrolled", photo_file("astronaut"), photo_file("astronaut", transform="dim_70")
    )
    assert result["identity"]["match"] is False
    assert result["identity"]["similarity"] < result["identity"]["threshold"]
    assert result["events"] == ["IDENTITY_MISMATCH"]


def test_the_phone_photo(analyzer, photo_file):
    result = analyze(photo_file("phone_on_couch", suffix=".png"))
    assert result["faces"] == [] and result["pose"] is None
    assert [o["label"] for o in result["objects"]] == ["cell phone"]
    assert result["events"] == ["FACE_NOT_FOUND", "PHONE_DETECTED"]


def test_several_faces_and_extra_object_labels(analyzer, photo_file):
    result = analyze(photo_file("zidane"), "--objects", "cell phone", "person")
    assert len(result["faces"]) == 2
    assert result["events"][0] == "MULTIPLE_FACES"
    assert {o["label"] for o in result["objects"]} == {"person"}


def test_a_broken_file_is_a_clear_error(analyzer, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff" + b"\x00" * 100)
    with pytest.raises(CommandError, match="corrupt"):
        analyze(str(bad))
    with pytest.raises(CommandError, match="cannot read"):
        analyze(str(tmp_path / "missing.jpg"))
    with pytest.raises(CommandError, match="unknown COCO labels"):
        analyze(str(bad), "--objects", "unicorn")


def test_a_reference_photo_that_cannot_be_enrolled_is_refused(analyzer, photo_file):
    with pytest.raises(CommandError, match="multiple_faces"):
        analyze(photo_file("astronaut"), "--enrolled", photo_file("zidane"))


@pytest.mark.django_db
def test_enrol_face_stores_a_template_for_alice(analyzer, photo_file):
    alice = UserFactory(username="alice")
    out = StringIO()
    call_command(
        "enrol_face", "alice", photo_file("astronaut"), photo_file("astronaut", transform="jpeg_q40"),
        photo_file("astronaut", transform="dim_70"), photo_file("cat"), stdout=out,
    )  # fmt: skip
    text = out.getvalue()
    assert "rejected (no_face)" in text
    assert "Enrolled alice from 3 photo(s)" in text
    assert FaceTemplate.objects.get(user=alice).frames_used == 3


@pytest.mark.django_db
def test_enrol_face_refuses_an_unknown_user_and_too_few_photos(analyzer, photo_file):
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        call_command("enrol_face", "nobody", photo_file("astronaut"), stdout=StringIO())
    UserFactory(username="bob")
    with pytest.raises(CommandError, match="Nothing was stored"):
        call_command("enrol_face", "bob", photo_file("cat"), stdout=StringIO())
