"""The frame job as the Celery broker carries it: the enrolment's neutral pose always travels (the worker applies
it, once); its embedding only when identity is due."""

from __future__ import annotations

import json

from proctoring.pool.base import FrameJob
from proctoring.vision.types import EnrolledFace, Gaze, Pose

ENROLLED = EnrolledFace(
    embedding=(0.6, 0.8), pack="default", model_id="m", neutral=Pose(4.0, -3.0, 1.0), neutral_gaze=Gaze(2.0, -1.0)
)


def through_the_broker(job: FrameJob) -> FrameJob:
    return FrameJob.from_payload(json.loads(json.dumps(job.to_payload())))


def test_a_job_with_identity_due_carries_the_whole_enrolment():
    job = through_the_broker(FrameJob(job_id="a", session_id=1, seq=2, frame=b"jpeg", enrolled=ENROLLED))
    assert job.identity is True and job.enrolled == ENROLLED and job.frame == b"jpeg"


def test_a_job_without_identity_carries_the_neutral_pose_but_not_the_embedding():
    job = through_the_broker(
        FrameJob(job_id="a", session_id=1, seq=2, frame=b"jpeg", enrolled=ENROLLED, identity=False)
    )
    assert job.identity is False and job.enrolled is not None
    assert (job.enrolled.neutral, job.enrolled.neutral_gaze) == (ENROLLED.neutral, ENROLLED.neutral_gaze)
    assert job.enrolled.embedding == ()


def test_a_job_of_a_student_without_enrolment_carries_none():
    job = through_the_broker(FrameJob(job_id="a", session_id=1, seq=2, frame=b"jpeg", enrolled=None))
    assert job.enrolled is None
