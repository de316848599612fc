"""The real default model pack behind both inference back ends (local worker processes and a Celery worker).

In its own module so that its workers never share the `inference` queue with the scripted ones of test_pool.py
(module-scoped fixtures live until their module ends).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import cv2
import numpy as np
import pytest
from django.conf import settings

from proctoring.pool.base import OK
from proctoring.vision.types import EnrolledFace
from tests.conftest import service_missing
from tests.proctoring.test_pool import job, start_backend, stop_backend

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def astronaut() -> np.ndarray:
    from skimage import data

    frame640 = np.zeros((480, 640, 3), np.uint8)
    frame640[:, 80:560] = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (480, 480))
    return frame640


def grace_hopper() -> np.ndarray:
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return cv2.resize(cv2.imread(str(path)), (480, 640))[:480, :640]


def jpeg(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return data.tobytes()


@pytest.fixture(scope="module")
def enrolled_astronaut() -> EnrolledFace:
    from proctoring.vision.packs import ModelPackError
    from proctoring.vision.pipeline import get_analyzer

    try:
        analyzer = get_analyzer("default", threads=1)
        analyzer.load()
    except ModelPackError as exc:
        service_missing(f"the default model pack is not installed ({exc})")
    from proctoring.services.enrolment import enrolment_check_frame

    check = enrolment_check_frame(image=astronaut(), analyzer=analyzer)
    assert check.ok, check
    return EnrolledFace(
        embedding=tuple(check.embedding),
        pack=analyzer.pack_name,
        model_id=analyzer.embedding_model_id,
        neutral=check.pose,
    )


@pytest.fixture(scope="module", params=["local", "celery"])
def real(request, enrolled_astronaut):
    # Loading the pack takes 10-20 s on 2 quiet cores, and much longer when the machine is busy.
    backend = start_backend(request.param, None, timeout_s=240.0)
    try:
        [warm] = asyncio.run(backend.run(job(jpeg(astronaut()), enrolled=None, deadline_in=240.0)))
        assert warm.status == OK, warm
        backend.pool.timeout_s = 60.0
        yield backend
    finally:
        stop_backend(backend)


async def test_real_models_recognise_the_enrolled_student_and_not_someone_else(real, enrolled_astronaut):
    same, other, nobody = await real.run(
        job(jpeg(astronaut()), enrolled=enrolled_astronaut),
        job(jpeg(grace_hopper()), enrolled=enrolled_astronaut),
        job(jpeg(np.full((480, 640, 3), 30, np.uint8)), enrolled=enrolled_astronaut),
    )
    assert same.status == OK and other.status == OK and nobody.status == OK
    assert len(same.observation["faces"]) == 1 and same.observation["identity"]["match"] is True
    assert abs(same.observation["pose"]["yaw"]) < 5  # relative to her own neutral pose
    assert other.observation["identity"]["match"] is False
    assert len(nobody.observation["faces"]) == 0
    assert same.observation["models"]["pack"].startswith(f"{settings.MODEL_PACK}@")  # the deployment's pack
