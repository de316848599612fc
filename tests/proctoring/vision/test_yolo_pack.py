"""The YOLO pack: ONNX decoding that agrees with ultralytics' own predict(), and the install path from a .pt.

No trained YOLO weights can be had here, so the agreement test builds YOLOv8n from ``yolov8n.yaml`` (seeded random
weights) in .venv-yolo, exports it to ONNX, and has ultralytics predict() on real photos. The project then runs the
ONNX through onnxruntime and its own letterbox/decode/NMS, and must find the same boxes (within 1 px), classes and
scores (within 1e-3).

Random weights alone give a constant output: each layer shrinks the signal until nothing varies. The reference
script therefore calibrates the BatchNorm statistics on the test photos (what a training pass does) and sets the
class biases of the last layer so that about 0.3% of the anchors of four classes (person, laptop, cell phone, book)
pass the 0.25 threshold and every other class stays silent: tens of overlapping boxes per photo, so NMS and the
un-letterboxing both matter.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from proctoring.vision import packs
from proctoring.vision.coco import COCO80
from proctoring.vision.yolo import (
    Letterbox,
    YoloOnnxDetector,
    decode_yolo,
    letterbox,
    ultralytics_env,
    yolo_venv_python,
)
from tests.conftest import service_missing

REFERENCE_SCRIPT = r"""
import json, sys
from pathlib import Path

import cv2, numpy as np, torch
from ultralytics import YOLO
from ultralytics.data.augment import LetterBox

out_dir, images = Path(sys.argv[1]), sys.argv[2:]
torch.manual_seed(0)
model = YOLO("yolov8n.yaml")
net = model.model

# 1. BatchNorm statistics from the photos, so that activations keep unit scale through the random layers.
batch = torch.stack([
    torch.from_numpy(LetterBox((640, 640), auto=False)(image=cv2.imread(p))[..., ::-1].transpose(2, 0, 1).copy())
    .float() / 255
    for p in images
])
for m in net.modules():
    if isinstance(m, torch.nn.BatchNorm2d):
        m.reset_running_stats()
        m.momentum = None
net.train()
with torch.no_grad():
    net(batch)
net.eval()

# 2. Class biases: four classes fire on their top ~0.3% anchors, the rest never.
head = net.model[-1]
fire = [0, 63, 67, 73]
with torch.no_grad():
    for conv in head.cv3:
        conv[-1].bias.zero_()
    scores = net(batch)[0][:, 4:].clamp(1e-6, 1 - 1e-6)
    logits = torch.log(scores / (1 - scores))
    for conv in head.cv3:
        conv[-1].bias.fill_(-30.0)
        for k in fire:
            conv[-1].bias[k] = float(np.log(0.25 / 0.75) - torch.quantile(logits[:, k].flatten(), 0.997))

# 3. Export, save the .pt an operator would hand in, predict with the torch model and with ultralytics' ONNX backend.
onnx_path = Path(model.export(format="onnx", imgsz=640, dynamic=False, simplify=True, verbose=False))
onnx_path.replace(out_dir / "random_yolov8n.onnx")
model.save(str(out_dir / "random_yolov8n.pt"))

def run(m, **kw):
    res = {}
    for p in images:
        r = m.predict(p, conf=0.25, iou=0.7, verbose=False, **kw)[0]
        res[p] = {"boxes": r.boxes.xyxy.tolist(), "scores": r.boxes.conf.tolist(),
                  "classes": r.boxes.cls.int().tolist(), "shape": list(r.orig_shape)}
    return res

# rect=False: a 640x640 letterbox, the same input as the fixed-size ONNX (rect mode pads only to a multiple of 32).
# A saved .pt holds FP16 weights, so predict() on it is its own reference for the install-from-.pt test.
ref = {
    "torch": run(model, rect=False),
    "onnx": run(YOLO(str(out_dir / "random_yolov8n.onnx"), task="detect")),
    "pt": run(YOLO(str(out_dir / "random_yolov8n.pt")), rect=False),
}
(out_dir / "reference.json").write_text(json.dumps(ref))
"""


def require_yolo_venv() -> Path:
    python = yolo_venv_python()
    if not python.is_file():
        service_missing(f"the ultralytics venv is missing ({python}): run `make yolo-venv`")
    return python


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[Path]:
    """Real photos of three shapes: portrait (bus.jpg), landscape (zidane.jpg) and a small square (astronaut)."""
    python = require_yolo_venv()
    assets = Path(
        subprocess.run(
            [str(python), "-c", "import ultralytics, pathlib; print(pathlib.Path(ultralytics.__file__).parent)"],
            capture_output=True,
            text=True,
            check=True,
            env=ultralytics_env(tmp_path_factory.mktemp("cfg")),
        ).stdout.strip()
    )
    import cv2
    from skimage import data

    astronaut = tmp_path_factory.mktemp("photos") / "astronaut.png"
    cv2.imwrite(str(astronaut), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    return [assets / "assets" / "bus.jpg", assets / "assets" / "zidane.jpg", astronaut]


@pytest.fixture(scope="module")
def reference(photos, tmp_path_factory) -> tuple[Path, dict]:
    """Run the reference script in .venv-yolo (about 20 s on 2 cores): the ONNX, the .pt and predict()'s answers."""
    python = require_yolo_venv()
    work = tmp_path_factory.mktemp("yolo")
    proc = subprocess.run(
        [str(python), "-c", REFERENCE_SCRIPT, str(work), *map(str, photos)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=work,
        env=ultralytics_env(work),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work, json.loads((work / "reference.json").read_text())


def assert_same_detections(ours, theirs: dict, *, what: str) -> None:
    assert len(ours) == len(theirs["scores"]), f"{what}: {len(ours)} boxes, ultralytics found {len(theirs['scores'])}"
    # Both lists are sorted by score; equal scores could swap places, so pair each of ours with its nearest box.
    their_boxes = np.asarray(theirs["boxes"], dtype=np.float64).reshape(-1, 4)
    unused = set(range(len(their_boxes)))
    for box, score, cls in zip(ours.boxes, ours.scores, ours.classes, strict=True):
        j = min(unused, key=lambda k: np.abs(their_boxes[k] - box).max() + abs(theirs["scores"][k] - score))
        unused.discard(j)
        assert np.abs(their_boxes[j] - box).max() <= 1.0, f"{what}: box {box} vs {their_boxes[j]}"
        assert abs(theirs["scores"][j] - score) <= 1e-3, f"{what}: score {score} vs {theirs['scores'][j]}"
        assert theirs["classes"][j] == cls, f"{what}: class {cls} vs {theirs['classes'][j]}"


# --- pure steps, on canned arrays ---------------------------------------------------------------------------------


def canned_output(rows: list[tuple[float, float, float, float, int, float]], anchors: int = 8400) -> np.ndarray:
    """A (1, 84, anchors) output with the given (cx, cy, w, h, class, score) rows and silence elsewhere."""
    out = np.zeros((1, 84, anchors), dtype=np.float32)
    out[0, 4:, :] = 0.001
    for i, (cx, cy, w, h, cls, score) in enumerate(rows):
        out[0, :4, i] = (cx, cy, w, h)
        out[0, 4 + cls, i] = score
    return out


def test_letterbox_centres_a_webcam_frame_with_grey_bands_like_ultralytics():
    frame = np.full((480, 640, 3), 200, dtype=np.uint8)
    padded, fit = letterbox(frame, (640, 640))
    assert padded.shape == (640, 640, 3)
    assert fit == Letterbox(gain_x=1.0, gain_y=1.0, pad_x=0, pad_y=80, width=640, height=480)
    assert (padded[:80] == 114).all() and (padded[560:] == 114).all() and (padded[80:560] == 200).all()


def test_decode_puts_a_phone_back_where_it_was_in_a_tall_photo():
    # A 720x1280 portrait photo: gain 0.5 on both axes and 140 columns of padding on each side. Ultralytics' ONNX
    # Runtime example scales y with a factor built from the width: that would put this box 78% too low.
    photo = np.zeros((1280, 720, 3), dtype=np.uint8)
    _, fit = letterbox(photo, (640, 640))
    assert (fit.gain_x, fit.gain_y, fit.pad_x, fit.pad_y) == (0.5, 0.5, 140, 0)
    phone = (300.0, 900.0, 420.0, 1100.0)  # x1, y1, x2, y2 in the photo
    cx = (phone[0] + phone[2]) / 2 * 0.5 + 140
    cy = (phone[1] + phone[3]) / 2 * 0.5
    out = canned_output([(cx, cy, 60.0, 100.0, 67, 0.9)])

    found = decode_yolo(out, fit)

    assert found.classes.tolist() == [67] and COCO80[67] == "cell phone"
    np.testing.assert_allclose(found.boxes[0], phone, atol=1e-3)
    assert found.scores[0] == pytest.approx(0.9)


def test_decode_suppresses_overlapping_boxes_of_one_class_but_keeps_other_classes():
    fit = Letterbox(1.0, 1.0, 0, 0, 640, 640)
    out = canned_output(
        [
            (100, 100, 50, 50, 67, 0.80),  # a phone
            (102, 101, 50, 50, 67, 0.70),  # the same phone, a weaker box: suppressed
            (101, 100, 50, 50, 0, 0.60),  # a person box on the same spot: another class, kept
            (400, 400, 50, 50, 67, 0.20),  # below the threshold
        ]
    )

    found = decode_yolo(out, fit, conf_threshold=0.25, iou_threshold=0.7)

    assert found.classes.tolist() == [67, 0]
    assert found.scores.tolist() == pytest.approx([0.8, 0.6])


def test_decode_reads_end_to_end_exports_and_refuses_malformed_output():
    fit = Letterbox(0.5, 0.5, 0, 80, 1280, 960)
    e2e = np.array([[[10, 90, 30, 130, 0.9, 67], [0, 0, 5, 5, 0.1, 0]]], dtype=np.float32)
    found = decode_yolo(e2e, fit)
    assert found.classes.tolist() == [67]
    np.testing.assert_allclose(found.boxes[0], [20, 20, 60, 100])

    with pytest.raises(ValueError, match="expected 4 \\+ 80 classes"):
        decode_yolo(np.zeros((1, 50, 8400), np.float32), fit, num_classes=80)
    with pytest.raises(ValueError, match="YOLO output must be"):
        decode_yolo(np.zeros((8400,), np.float32), fit)


def test_detector_names_class_67_cell_phone_and_applies_per_label_thresholds():
    detector = YoloOnnxDetector(
        params={"conf_threshold": 0.25, "thresholds": {"person": 0.5}}, session=object(), name="yolo_onnx"
    )
    out = canned_output([(100, 100, 40, 80, 67, 0.6), (400, 300, 100, 200, 0, 0.4)])

    objects = detector.postprocess(out, {"fit": Letterbox(1.0, 1.0, 0, 0, 640, 640)})

    assert [(o.label, round(o.score, 3)) for o in objects] == [("cell phone", 0.6)]
    assert objects[0].box == pytest.approx((80.0, 60.0, 120.0, 140.0))


# --- agreement with ultralytics, and the install path ---------------------------------------------------------------


@pytest.mark.slow
def test_onnx_decoding_finds_what_ultralytics_predict_finds_on_real_photos(reference):
    work, ref = reference
    detector = YoloOnnxDetector(
        files={"model": work / "random_yolov8n.onnx"}, params={"conf_threshold": 0.25, "iou_threshold": 0.7}
    )
    import cv2

    total = 0
    for path, theirs in ref["torch"].items():
        image = cv2.imread(path)
        assert list(image.shape[:2]) == theirs["shape"]
        detector.load()
        tensors, meta = detector.preprocess(image)
        ours = detector.decode(detector.infer(tensors), meta)
        assert_same_detections(ours, theirs, what=f"{Path(path).name} vs torch predict()")
        assert_same_detections(ours, ref["onnx"][path], what=f"{Path(path).name} vs ultralytics' ONNX predict()")
        total += len(ours)
    # The comparison means something only if there is something to compare: several boxes of several classes.
    classes = {c for theirs in ref["torch"].values() for c in theirs["classes"]}
    assert total >= 15 and classes >= {0, 67}, (total, classes)


@pytest.mark.slow
def test_yolo_pack_installs_from_an_operator_pt_file_and_detects_phones_like_ultralytics(
    reference, tmp_path, monkeypatch
):
    work, ref = reference
    # Only the YOLO file of the real manifest (the face files are the default pack's, tested there).
    manifest = json.loads((packs.MANIFEST_DIR / "yolo.json").read_text())
    manifest["files"] = {"yolo_coco.onnx": manifest["files"]["yolo_coco.onnx"]}
    manifest["models"] = {"objects": manifest["models"]["objects"]}
    manifest["models"]["objects"]["params"] = {"conf_threshold": 0.25, "iou_threshold": 0.7}
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "yolo.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(packs, "MANIFEST_DIR", manifests)
    pt_file = tmp_path / "operator" / "my-yolov8n.pt"
    pt_file.parent.mkdir()
    pt_file.write_bytes((work / "random_yolov8n.pt").read_bytes())

    messages: list[str] = []
    report = packs.install_pack("yolo", root=tmp_path / "models", operator_dir=pt_file, progress=messages.append)

    assert report.ok and report.checked == ("yolo_coco.onnx",)
    assert any("exporting .pt -> ONNX" in m for m in messages)
    _, models = packs.build_models("yolo", root=tmp_path / "models")
    detector = models["objects"]
    import cv2

    for path, theirs in ref["pt"].items():
        image = cv2.imread(path)
        tensors, meta = detector.preprocess(image)
        assert_same_detections(detector.decode(detector.infer(tensors), meta), theirs, what=f"{path} vs .pt predict()")
        phones = [o for o in detector.detect(image) if o.label == "cell phone"]
        expected = sorted(
            (s for s, c in zip(theirs["scores"], theirs["classes"], strict=True) if c == 67), reverse=True
        )
        assert [o.score for o in phones] == pytest.approx(expected, abs=1e-3)

    # Tampering with the installed ONNX is caught by verify.
    onnx = tmp_path / "models" / "yolo" / "yolo_coco.onnx"
    onnx.write_bytes(onnx.read_bytes()[:-10])
    assert not packs.verify_pack("yolo", root=tmp_path / "models").ok


def test_yolo_install_without_weights_names_the_fix(tmp_path, settings, monkeypatch):
    from django.core.management import CommandError, call_command

    settings.MODEL_DIR = tmp_path
    monkeypatch.delenv("YOLO_WEIGHTS", raising=False)
    with pytest.raises(CommandError, match="--from"):
        call_command("model_packs", "install", "yolo")


def test_yolo_pack_takes_the_default_packs_face_models_as_they_are_calibrated_there(tmp_path, monkeypatch):
    default, yolo = packs.load_manifest("default"), packs.load_manifest("yolo")
    for role in ("detector", "pose", "embedder"):
        assert {k: v for k, v in yolo.models[role].items() if k != "inherited_from"} == default.models[role], role
        assert yolo.role_pack(role) == "default"  # whose model it is (enrolments made under default stay current)
        for fname in default.models[role]["files"].values():
            owner = next(f for f in default.files.values() if fname in f.outputs())
            assert yolo.files[owner.name] == owner, fname
    assert yolo.models["objects"]["class"] == "yolo_onnx"
    assert yolo.version.endswith(f"+default-{default.version}")  # a new default pack means a reinstall

    # A pack that names itself as its base is refused with the manifest's name.
    loop = {"name": "loop", "version": "1", "files": {}, "models": {"detector": {"from_pack": "loop"}}}
    (tmp_path / "loop.json").write_text(json.dumps(loop))
    monkeypatch.setattr(packs, "MANIFEST_DIR", tmp_path)
    with pytest.raises(packs.ModelPackError, match="circular"):
        packs.load_manifest("loop")
