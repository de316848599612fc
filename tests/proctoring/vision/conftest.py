"""Fixtures for the vision engine tests: the real default pack and the real evaluation photos.

Both are set-up steps of `make test` (`manage.py model_packs install`, `bench/evalset.py fetch`); when they have not
run, these tests skip (or fail under REQUIRE_SERVICES=1) with the command that fixes it.
"""

from __future__ import annotations

import pytest

from tests.conftest import service_missing


@pytest.fixture(scope="session")
def analyzer():
    from proctoring.vision.packs import ModelPackError
    from proctoring.vision.pipeline import get_analyzer

    try:
        return get_analyzer("default", threads=1)
    except ModelPackError as exc:
        service_missing(f"the default model pack is not usable ({exc})")


@pytest.fixture(scope="session")
def evalset():
    from bench import evalset as module

    if not module.is_fetched():
        service_missing("the evaluation photos are not fetched: run `python bench/evalset.py fetch`")
    return module


@pytest.fixture(scope="session")
def photo(evalset):
    """photo(name) -> BGR array of a labelled evaluation image (cached per session)."""
    cache = {}

    def load(name: str):
        if name not in cache:
            cache[name] = evalset.load(name)
        return cache[name].copy()

    return load


@pytest.fixture(scope="session")
def enrolled_astronaut(analyzer, photo):
    """Eileen Collins (skimage's astronaut) enrolled from her photo, as face_enrol would store her."""
    from proctoring.vision.types import EnrolledFace

    image = photo("astronaut")
    analysis = analyzer.describe_face(image, analyzer.main_face(analyzer.detector.detect(image)))
    return EnrolledFace(
        embedding=tuple(float(v) for v in analysis.embedding),
        pack=analyzer.pack_name,
        model_id=analyzer.embedding_model_id,
        neutral=analysis.pose,
    )
