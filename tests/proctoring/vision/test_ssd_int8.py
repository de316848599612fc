"""The default pack's phone detector is INT8 (NNCF at install, proctoring/vision/ssd_int8.py): the installed IR is
quantised, its checksum is recorded at install, and on real photos it finds the phones the FP32 model finds, the
hard one included, and nothing where there is no phone (bench/int8.py has the timings)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings

from proctoring.vision import packs

pytestmark = pytest.mark.slow

PACK = Path(settings.DATA_DIR) / "models" / "default"


def test_the_installed_phone_detector_is_quantised_and_its_checksum_recorded():
    xml = (PACK / "ssd_mobilenet_v2_coco.xml").read_text()
    assert 'type="FakeQuantize"' in xml
    record = json.loads((PACK / "installed.json").read_text())
    assert record["files"]["ssd_mobilenet_v2_coco.xml"] == packs.sha256_of(PACK / "ssd_mobilenet_v2_coco.xml")
    assert record["files"]["ssd_mobilenet_v2_coco.bin"] == packs.sha256_of(PACK / "ssd_mobilenet_v2_coco.bin")
    assert packs.verify_pack("default").ok
    assert packs.load_manifest("default").models["objects"]["version"].endswith("-int8")


def test_int8_finds_every_phone_fp32_finds_and_nothing_else(analyzer, photo):
    # sample2's phone is the hard one: FP32 scores it 0.53, INT8 0.48, hence INT8's threshold of 0.45; the highest
    # score on a photo without a phone is about 0.21.
    for name, expected in (("phone_on_couch", True), ("sample2", True), ("zidane", False), ("astronaut", False)):
        obs = analyzer.analyze(photo(name), objects=frozenset({"cell phone"}))
        assert any(o.label == "cell phone" for o in obs.objects) is expected, (name, obs.objects)
