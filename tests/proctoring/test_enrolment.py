"""Face enrolment with the real default pack on real photos: quality checks, the stored template, re-enrolment,
and embeddings from another model refused.

alice is Eileen Collins (skimage's astronaut); bob tries to slip Grace Hopper's photo in among his own.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from proctoring.models import FaceTemplate
from proctoring.selectors import enrolled_face_of, enrolment_is_current
from proctoring.services.enrolment import MESSAGES, enrolment_check_frame, face_enrol
from tests.conftest import service_missing
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def analyzer():
    from proctoring.vision.packs import ModelPackError
    from proctoring.vision.pipeline import get_analyzer

    try:
        return get_analyzer("default", threads=1)
    except ModelPackError as exc:
        service_missing(f"the default model pack is not usable ({exc})")


@pytest.fixture(scope="module")
def evalset():
    from bench import evalset as module

    if not module.is_fetched():
        service_missing("the evaluation photos are not fetched: run `python bench/evalset.py fetch`")
    return module


@pytest.fixture(scope="module")
def alice_frames(evalset):
    """Three good frames of alice, as a webcam would vary them."""
    astronaut = evalset.load("astronaut")
    return [
        evalset.webcam_frame(astronaut),
        evalset.transform(astronaut, "jpeg_q40"),
        evalset.transform(astronaut, "dim_70"),
    ]


def check(analyzer, image):
    return enrolment_check_frame(image=image, analyzer=analyzer)


def test_a_clear_frame_passes_with_its_embedding_and_pose(analyzer, alice_frames):
    result = check(analyzer, alice_frames[0])
    assert result.ok and result.reason is None
    assert len(result.embedding) == 512
    assert np.linalg.norm(result.embedding) == pytest.approx(1.0, abs=1e-4)
    assert abs(result.pose.yaw) < 10
    assert result.quality["face_px"] >= 80


def test_a_frame_without_a_face_is_rejected_calmly(analyzer, evalset):
    result = check(analyzer, evalset.load("cat"))
    assert (result.ok, result.reason) == (False, "no_face")
    assert result.message == MESSAGES["no_face"]
    assert result.embedding is None


def test_a_frame_with_two_people_is_rejected(analyzer, evalset):
    assert check(analyzer, evalset.load("zidane")).reason == "multiple_faces"


def test_a_dark_frame_is_rejected(analyzer, evalset):
    dark = (evalset.load("astronaut").astype(np.float32) * 0.2).astype(np.uint8)
    result = check(analyzer, dark)
    assert result.reason == "too_dark"
    assert "lamp" in result.message


def test_a_washed_out_frame_is_rejected(analyzer, evalset):
    bright = cv2.convertScaleAbs(evalset.load("grace_hopper"), alpha=1.0, beta=150)
    assert check(analyzer, bright).reason == "too_bright"


def test_a_blurred_frame_is_rejected(analyzer, evalset):
    blurred = cv2.GaussianBlur(evalset.load("astronaut"), (0, 0), 3)
    assert check(analyzer, blurred).reason == "blurry"


def test_a_face_far_from_the_camera_is_rejected(analyzer, evalset):
    small = cv2.resize(evalset.load("astronaut"), (256, 256), interpolation=cv2.INTER_AREA)
    frame = np.zeros((480, 640, 3), dtype=np.uint8)
    frame[112:368, 192:448] = small
    result = check(analyzer, frame)
    assert result.reason == "face_too_small"
    assert "closer" in result.message


def test_a_face_turned_aside_is_rejected(analyzer, evalset):
    # the man on the left of zidane.jpg, alone in the crop, looks well to one side
    turned = np.ascontiguousarray(evalset.load("zidane")[150:560, 420:800])
    result = check(analyzer, turned)
    assert result.reason == "face_turned"
    assert abs(result.pose.yaw) > 25


def test_alice_enrols_from_three_good_frames(analyzer, alice_frames):
    alice = UserFactory(username="alice")
    result = face_enrol(user=alice, images=alice_frames, analyzer=analyzer)

    assert result.ok and result.accepted == 3 and result.rejections == []
    template = FaceTemplate.objects.get(user=alice)
    assert (template.pack, template.model_id) == (analyzer.pack_name, analyzer.embedding_model_id)
    vector = np.frombuffer(bytes(template.embedding), dtype="<f4")
    assert template.dim == vector.shape[0] == 512
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-4)
    assert template.frames_used == 3
    assert abs(template.neutral_yaw) < 10 and abs(template.neutral_pitch) < 15
    assert template.quality["min_similarity_to_template"] > 0.9

    enrolled = enrolled_face_of(user=alice)
    assert enrolled.model_id == analyzer.embedding_model_id
    assert enrolled.neutral.yaw == pytest.approx(template.neutral_yaw)
    assert enrolment_is_current(user=alice)

    # Her neutral gaze is recorded too, and a frame like her enrolment's reads as looking where she looked then.
    assert template.neutral_gaze_yaw is not None and template.neutral_gaze_pitch is not None
    assert enrolled.neutral_gaze.yaw == pytest.approx(template.neutral_gaze_yaw)
    seen = analyzer.analyze(alice_frames[0], enrolled=enrolled, objects=frozenset())
    absolute = analyzer.analyze(alice_frames[0], objects=frozenset())
    assert seen.gaze.yaw == pytest.approx(absolute.gaze.yaw - template.neutral_gaze_yaw, abs=0.02)
    assert abs(seen.gaze.yaw) < 5 and abs(seen.gaze.pitch) < 5


def test_rejected_frames_are_listed_with_reasons_and_too_few_good_ones_store_nothing(analyzer, evalset, alice_frames):
    alice = UserFactory(username="alice")
    images = [alice_frames[0], evalset.load("cat"), evalset.load("zidane")]
    result = face_enrol(user=alice, images=images, analyzer=analyzer)

    assert result.template is None and result.accepted == 1
    assert [(index, reason) for index, reason, _ in result.rejections] == [(1, "no_face"), (2, "multiple_faces")]
    assert not FaceTemplate.objects.filter(user=alice).exists()
    assert enrolled_face_of(user=alice) is None


def test_a_photo_of_someone_else_among_the_frames_is_left_out(analyzer, evalset, alice_frames):
    bob = UserFactory(username="bob")
    images = [*alice_frames, evalset.webcam_frame(evalset.load("grace_hopper"))]
    result = face_enrol(user=bob, images=images, analyzer=analyzer)

    assert result.accepted == 3
    assert result.rejections == [(3, "different_person", MESSAGES["different_person"])]
    # the template is alice's face, not a blend with Grace Hopper's
    obs = analyzer.analyze(evalset.load("grace_hopper"), enrolled=enrolled_face_of(user=bob))
    assert obs.identity.match is False


def test_re_enrolment_replaces_the_template(analyzer, alice_frames):
    alice = UserFactory(username="alice")
    face_enrol(user=alice, images=alice_frames, analyzer=analyzer)
    face_enrol(user=alice, images=alice_frames[:2], min_frames=2, analyzer=analyzer)
    assert FaceTemplate.objects.filter(user=alice).count() == 1
    assert FaceTemplate.objects.get(user=alice).frames_used == 2


def test_an_embedding_from_another_model_is_refused(analyzer, evalset, alice_frames):
    charlie = UserFactory(username="charlie")
    face_enrol(user=charlie, images=alice_frames, analyzer=analyzer)
    FaceTemplate.objects.filter(user=charlie).update(pack="insightface", model_id="buffalo_l/w600k_r50")

    assert not enrolment_is_current(user=charlie)
    obs = analyzer.analyze(alice_frames[0], enrolled=enrolled_face_of(user=charlie))
    assert obs.identity is None
    assert "must re-enrol" in obs.identity_error
    assert "insightface/buffalo_l/w600k_r50" in obs.identity_error


def test_packs_that_take_the_default_embedder_keep_its_enrolments(analyzer, alice_frames, settings):
    """default-int8 and yolo take their embedder from default: switching to one must not make everyone re-enrol."""
    from proctoring.selectors import current_embedding_model
    from proctoring.vision.packs import ModelPackError
    from proctoring.vision.pipeline import get_analyzer

    alice = UserFactory(username="alice")
    face_enrol(user=alice, images=alice_frames, analyzer=analyzer)
    assert FaceTemplate.objects.get(user=alice).pack == "default"
    for pack in ("default-int8", "yolo"):
        assert current_embedding_model(pack=pack) == current_embedding_model(pack="default"), pack
    settings.MODEL_PACK = "default-int8"
    assert enrolment_is_current(user=alice)
    assert current_embedding_model(pack="buffalo_l")[0] == "buffalo_l"  # a pack with an embedder of its own
    try:
        int8 = get_analyzer("default-int8", threads=1)
    except ModelPackError as exc:
        service_missing(f"the default-int8 pack is not installed ({exc})")
    seen = int8.analyze(alice_frames[0], enrolled=enrolled_face_of(user=alice), objects=frozenset())
    assert seen.identity_error is None and seen.identity.match
    # An enrolment recorded as default-int8's (before enrolments named the embedder's own pack) still counts.
    FaceTemplate.objects.filter(user=alice).update(pack="default-int8")
    assert enrolment_is_current(user=alice)
    settings.MODEL_PACK = "default"
    assert enrolment_is_current(user=alice)
    seen = analyzer.analyze(alice_frames[0], enrolled=enrolled_face_of(user=alice), objects=frozenset())
    assert seen.identity_error is None and seen.identity.match
    FaceTemplate.objects.filter(user=alice).update(pack="buffalo_l")  # another embedding space: re-enrol
    assert not enrolment_is_current(user=alice)
