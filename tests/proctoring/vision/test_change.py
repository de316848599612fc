"""The skip rule's change test and the worker's use of it, with the real default pack on the real photos.

A worker may re-use a session's last measured phone-detector result for a frame that has not changed since
(proctoring.vision.change, proctoring.pool.base.analyze_job). These tests pin both sides: camera noise and small
movements are "unchanged", while a phone coming into view, a second person, someone else, or an empty chair are
"changed", so the detector runs on them and k-of-n still sees every frame of a phone.
"""

from __future__ import annotations

import dataclasses
import uuid

import cv2
import numpy as np
import pytest

from proctoring.pool.base import (
    OK,
    AnalysisResult,
    FrameJob,
    ObjectsMemory,
    analyze_job,
    objects_memory_after,
    worker_init,
)
from proctoring.rules import FrameRecord
from proctoring.vision.change import CHANGE_THRESHOLD, change, signature
from proctoring.vision.types import Gaze, Pose
from proctoring.vision.types import Observation as Seen


def webcam(evalset, image, *, seed: int = 0, shift: int = 0) -> np.ndarray:
    """A 640x480 webcam frame of the photo with sensor noise and a small shift, as consecutive frames differ."""
    rng = np.random.default_rng(seed)
    base = np.roll(evalset.webcam_frame(image).astype(np.int16), (shift, -shift), axis=(0, 1))
    return np.clip(base + rng.normal(0, 3.0, base.shape), 0, 255).astype(np.uint8)


def with_phone(evalset, photo, *, seed: int = 0) -> np.ndarray:
    """The enrolled student's frame with the real phone from the couch photo held up beside her face."""
    frame = webcam(evalset, photo("astronaut"), seed=seed)
    phone = photo("phone_on_couch")[452:608, 38:344]  # the phone lies at rows 482-578, columns 68-314 here
    frame[300 : 300 + phone.shape[0], 20 : 20 + phone.shape[1]] = phone
    return frame


def jpeg(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return data.tobytes()


@pytest.mark.parametrize("seed,shift", [(1, 0), (2, 2), (3, -4), (4, 8), (5, 12)])
def test_camera_noise_and_a_student_shifting_in_the_chair_are_not_a_change(evalset, photo, seed, shift):
    first = signature(webcam(evalset, photo("astronaut"), seed=0))
    later = signature(webcam(evalset, photo("astronaut"), seed=seed, shift=shift))
    assert change(first, later) < CHANGE_THRESHOLD


@pytest.mark.parametrize("scene", ["phone", "zidane", "grace_hopper", "coffee"])
def test_a_phone_a_second_person_someone_else_or_an_empty_chair_is_a_change(evalset, photo, scene):
    student = signature(webcam(evalset, photo("astronaut")))
    image = with_phone(evalset, photo, seed=5) if scene == "phone" else webcam(evalset, photo(scene), seed=5)
    assert change(student, signature(image)) > CHANGE_THRESHOLD * (1.4 if scene == "phone" else 4)


def test_signatures_of_another_size_count_as_changed():
    assert change(b"\x00" * 768, b"\x00" * 10) == 255.0


# --- The worker ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_worker(analyzer):
    worker_init("default", threads=1)
    yield
    worker_init(analyzer_path="tests.proctoring.fakes:scripted_analyzer")


def run(image: np.ndarray, memory: ObjectsMemory | None, *, seq: int, enrolled=None, identity: bool = True) -> dict:
    job = FrameJob(job_id=uuid.uuid4().hex, session_id=1, seq=seq, frame=jpeg(image), enrolled=enrolled,
                   identity=identity, objects_memory=memory)  # fmt: skip
    result = analyze_job(job)
    assert result["status"] == OK, result
    return result


def remember(result: dict, *, seq: int, reuses: int) -> ObjectsMemory:
    """The session's memory after a measured frame, as the consumer keeps it (objects_memory_after)."""
    memory = objects_memory_after(None, seq=seq, result=AnalysisResult.from_dict(result), limit=2)
    assert memory is not None
    return dataclasses.replace(memory, reuses_left=reuses)


def phone_score(result: dict) -> float:
    return max((o["score"] for o in result["observation"]["objects"] if o["label"] == "cell phone"), default=0.0)


def test_the_real_detector_finds_the_phone_held_up_beside_the_student(real_worker, evalset, photo):
    assert phone_score(run(with_phone(evalset, photo), None, seq=1)) >= 0.5
    assert phone_score(run(webcam(evalset, photo("astronaut")), None, seq=1)) < 0.5


def test_an_unchanged_frame_reuses_the_measured_result_and_says_so(real_worker, evalset, photo):
    measured = run(webcam(evalset, photo("astronaut"), seed=0), None, seq=1)
    assert measured["objects_from_seq"] is None and "objects" in measured["timings"]
    again = run(webcam(evalset, photo("astronaut"), seed=1, shift=2), remember(measured, seq=1, reuses=2), seq=2)
    assert again["objects_from_seq"] == 1 and again["change"] < CHANGE_THRESHOLD
    assert "objects" not in again["timings"]  # the detector did not run
    assert again["observation"]["objects"] == measured["observation"]["objects"]


def test_an_unchanged_frame_reuses_the_faces_found_but_measures_pose_and_gaze_again(
    real_worker, evalset, photo, enrolled_astronaut
):
    measured = run(webcam(evalset, photo("astronaut"), seed=0), None, seq=1, enrolled=enrolled_astronaut)
    assert "detect" in measured["timings"] and len(measured["observation"]["faces"]) == 1
    again = run(webcam(evalset, photo("astronaut"), seed=1, shift=2), remember(measured, seq=1, reuses=2), seq=2,
                enrolled=enrolled_astronaut)  # fmt: skip
    assert again["objects_from_seq"] == 1 and "detect" not in again["timings"]  # the face detector did not run
    assert [f["box"] for f in again["observation"]["faces"]] == [f["box"] for f in measured["observation"]["faces"]]
    # Pose and gaze are this frame's own, within the remembered box: the same student, two pixels over.
    assert "pose" in again["timings"]
    for key in ("pose", "gaze"):
        for axis, value in measured["observation"][key].items():
            assert again["observation"][key][axis] == pytest.approx(value, abs=3.0), (key, axis)


def test_a_frame_whose_faces_were_detected_again_says_so_while_it_reuses_the_phone_result(real_worker, evalset, photo):
    measured = run(webcam(evalset, photo("zidane"), seed=0), None, seq=1)  # faces about 80 px wide: too small
    again = run(webcam(evalset, photo("zidane"), seed=1), remember(measured, seq=1, reuses=2), seq=2)
    assert again["objects_from_seq"] == 1 and again["faces_from_seq"] is None and "detect" in again["timings"]
    student = run(webcam(evalset, photo("astronaut"), seed=0), None, seq=1)
    kept = run(webcam(evalset, photo("astronaut"), seed=1), remember(student, seq=1, reuses=2), seq=2)
    assert kept["objects_from_seq"] == 1 and kept["faces_from_seq"] == 1


@pytest.mark.parametrize("scene,faces", [("zidane", 2), ("coffee", 0), ("grace_hopper", 1)])
def test_a_second_person_an_empty_chair_or_someone_else_reruns_the_face_detector(
    real_worker, evalset, photo, scene, faces
):
    measured = run(webcam(evalset, photo("astronaut")), None, seq=1)
    after = run(webcam(evalset, photo(scene), seed=3), remember(measured, seq=1, reuses=2), seq=2)
    assert after["objects_from_seq"] is None and "detect" in after["timings"]
    assert len(after["observation"]["faces"]) == faces


def test_a_phone_that_comes_into_view_between_two_analysed_frames_reruns_the_detector(real_worker, evalset, photo):
    measured = run(webcam(evalset, photo("astronaut")), None, seq=1)
    assert phone_score(measured) < 0.5
    phone = run(with_phone(evalset, photo, seed=3), remember(measured, seq=1, reuses=2), seq=2)
    assert phone["objects_from_seq"] is None and phone["change"] >= CHANGE_THRESHOLD
    assert phone_score(phone) >= 0.5


def test_a_phone_kept_in_view_is_still_seen_on_the_frames_that_reuse_its_measurement(real_worker, evalset, photo):
    measured = run(with_phone(evalset, photo, seed=0), None, seq=1)
    kept = run(with_phone(evalset, photo, seed=1), remember(measured, seq=1, reuses=2), seq=2)
    assert kept["objects_from_seq"] == 1 and phone_score(kept) == phone_score(measured) >= 0.5


def test_the_detector_runs_again_once_the_reuses_are_spent_even_on_an_unchanged_frame(real_worker, evalset, photo):
    measured = run(webcam(evalset, photo("astronaut"), seed=0), None, seq=1)
    spent = run(webcam(evalset, photo("astronaut"), seed=1), remember(measured, seq=1, reuses=0), seq=4)
    assert spent["objects_from_seq"] is None and "objects" in spent["timings"]


def test_where_the_detector_runs_in_bf16_its_phone_decisions_are_those_of_f32(analyzer, evalset, photo, monkeypatch):
    """Twelve frames of a small phone held up beside the student, scored 0.50-0.64 in f32 but five of them under 0.5
    in bf16 on an AMX Xeon: the f32 recheck (proctoring.vision.ssd) must give back f32's phones, score for score."""
    from proctoring.vision.base import runs_in_bf16

    fast = analyzer.object_detector
    if not runs_in_bf16(fast.session):
        pytest.skip("the phone detector runs in f32 on this CPU: there is nothing to recheck")
    monkeypatch.setenv("INFERENCE_PRECISION", "f32")
    f32 = type(fast)(files=fast.files, params=fast.params, threads=1)
    frames = [cv2.imdecode(np.frombuffer(jpeg(with_phone(evalset, photo, seed=s)), np.uint8), cv2.IMREAD_COLOR)
              for s in range(12)]  # fmt: skip
    phones = frozenset({"cell phone"})
    for frame in frames:
        expected = [(o.label, o.score) for o in f32.detect(frame, labels=phones)]
        assert [(o.label, pytest.approx(o.score, abs=1e-3)) for o in fast.detect(frame, labels=phones)] == expected
        assert fast.last_rechecked
    assert fast.exact is not None and f32.exact is None


# --- Identity follows the same rule, for matches only --------------------------------------------------------------


def identity(result: dict) -> dict | None:
    return result["observation"]["identity"]


def test_an_unchanged_frame_of_the_enrolled_student_reuses_the_match_without_embedding(
    real_worker, evalset, photo, enrolled_astronaut
):
    measured = run(webcam(evalset, photo("astronaut"), seed=0), None, seq=1, enrolled=enrolled_astronaut)
    assert identity(measured)["match"] and "embed" in measured["timings"]
    again = run(webcam(evalset, photo("astronaut"), seed=1, shift=2), remember(measured, seq=1, reuses=2), seq=2,
                enrolled=enrolled_astronaut)  # fmt: skip
    assert again["identity_from_seq"] == 1 and "embed" not in again["timings"]
    assert identity(again) == identity(measured)
    # Head pose still runs on every frame, relative to the enrolled neutral pose.
    assert "pose" in again["timings"] and again["observation"]["pose"] is not None


def test_someone_else_in_the_chair_is_always_measured_and_refused(real_worker, evalset, photo, enrolled_astronaut):
    measured = run(webcam(evalset, photo("astronaut"), seed=0), None, seq=1, enrolled=enrolled_astronaut)
    stranger = run(webcam(evalset, photo("grace_hopper"), seed=1), remember(measured, seq=1, reuses=2), seq=2,
                   enrolled=enrolled_astronaut)  # fmt: skip
    assert stranger["identity_from_seq"] is None and "embed" in stranger["timings"]
    assert identity(stranger)["match"] is False


def test_a_mismatch_is_never_reused(real_worker, evalset, photo, enrolled_astronaut):
    stranger = webcam(evalset, photo("grace_hopper"), seed=0)
    measured = run(stranger, None, seq=1, enrolled=enrolled_astronaut)
    assert identity(measured)["match"] is False
    memory = remember(measured, seq=1, reuses=2)
    assert memory.identity is None
    again = run(webcam(evalset, photo("grace_hopper"), seed=1), memory, seq=2, enrolled=enrolled_astronaut)
    assert again["objects_from_seq"] == 1  # the picture has not changed: the phone detector is skipped
    assert again["identity_from_seq"] is None and identity(again)["match"] is False


# --- The neutral pose: carried in the frame job, applied once -----------------------------------------------------


def test_the_neutral_pose_is_applied_once_in_the_worker_whether_identity_is_due_or_not(
    real_worker, evalset, photo, enrolled_astronaut
):
    image = webcam(evalset, photo("astronaut"))
    measured = run(image, None, seq=1)["observation"]  # no enrolment: pose and gaze as measured
    assert measured["pose"] is not None and measured["gaze"] is not None
    # A neutral pose so far round that the difference crosses 180 degrees and must wrap, and a neutral gaze.
    neutral = Pose(yaw=measured["pose"]["yaw"] - 200.0, pitch=measured["pose"]["pitch"] + 5.0, roll=0.0)
    enrolled = dataclasses.replace(enrolled_astronaut, neutral=neutral, neutral_gaze=Gaze(yaw=1.5, pitch=-2.0))
    due = run(image, None, seq=2, enrolled=enrolled, identity=True)["observation"]
    not_due = run(image, None, seq=3, enrolled=enrolled, identity=False)["observation"]
    assert due["identity"] is not None and not_due["identity"] is None and not_due["identity_error"] is None
    for seen in (due, not_due):
        assert seen["pose"]["yaw"] == pytest.approx(-160.0, abs=0.02)
        assert seen["pose"]["pitch"] == pytest.approx(-5.0, abs=0.02)
        assert seen["gaze"]["yaw"] == pytest.approx(measured["gaze"]["yaw"] - 1.5, abs=0.02)
        assert seen["gaze"]["pitch"] == pytest.approx(measured["gaze"]["pitch"] + 2.0, abs=0.02)
        # The rules take the pose as the worker made it: nothing downstream applies the neutral pose again.
        record = FrameRecord.from_observation(Seen.from_dict(seen), seq=1, at=0.0)
        assert (record.yaw, record.gaze_yaw) == (seen["pose"]["yaw"], seen["gaze"]["yaw"])
