"""The evaluation set's recipe: labels that make sense, sources that are registry packages, an idempotent fetch."""

from __future__ import annotations

from bench import evalset as module


def test_every_label_names_a_registry_source_and_a_checksum():
    data = module.labels()
    for name, spec in data["images"].items():
        if "from" in spec:
            assert spec["from"] in data["images"]
            continue
        source = data["sources"][spec["source"]]
        assert source["kind"] in ("pypi", "npm") and source["version"]
        assert len(spec["sha256"]) == 64, name


def test_labels_agree_with_their_events():
    for item in module.items():
        first = item.events[0]
        if item.faces == 0:
            assert first == "FACE_NOT_FOUND"
        elif item.faces > 1:
            assert first == "MULTIPLE_FACES"
        else:
            assert first == "AUTHORIZED"
        assert ("PHONE_DETECTED" in item.events) == item.phone


def test_fetching_again_only_verifies(evalset):
    messages: list[str] = []
    evalset.fetch(progress=messages.append)
    assert len(messages) == 1 and messages[0].startswith("evaluation set ready")


def test_runtime_variants_keep_the_frame_shape(photo, evalset):
    image = photo("astronaut")
    assert evalset.mirror(image)[0, 0].tolist() == image[0, -1].tolist()
    assert evalset.webcam_frame(image).shape == (480, 640, 3)
    for kind in module.labels()["genuine_transforms"]:
        assert evalset.transform(image, kind).ndim == 3
