"""The InsightFace pack's adapters, on synthetic models laid out like buffalo_l, and on the default pack's ArcFace.

The real buffalo weights cannot be had on this network, so the tests build ONNX models with the same signatures
with onnx.helper:

- det_10g.onnx: an SCRFD-shaped detector (9 outputs: scores, box distances and 5 keypoints for strides 8, 16, 32, two
  anchors per cell) whose score is a sigmoid of each cell's brightness, so a bright square on a dark frame is a
  "face" at a known place;
- w600k_r50.onnx: 112x112 -> 512 (average pooling and a seeded random projection);
- 1k3d68.onnx: 192x192 -> 3309 values whose last 68x3 are InsightFace's mean face shape turned by a known yaw.

Each adapter is then held to insightface's own classes on the same model and image (SCRFD.detect, ArcFaceONNX.get,
Landmark.get), and the pack loads them through its manifest from a directory the operator provides.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from proctoring.vision import packs
from proctoring.vision.types import Face
from tests.conftest import service_missing

try:  # the pack's runtime, installed --no-deps by `make test-deps` (requirements-insightface.txt)
    import insightface  # noqa: F401
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError:  # pragma: no cover - exercised only without `make insightface`
    insightface = None

from proctoring.vision.insightface_pack import (
    InsightFaceDetector,
    InsightFaceEmbedder,
    InsightFacePoseEstimator,
    decode_scrfd,
)

BUFFALO_FILES = ("det_10g.onnx", "w600k_r50.onnx", "1k3d68.onnx")
# Keypoint offsets from an anchor centre, in stride units: left eye, right eye, nose, left and right mouth corners.
KPS_OFFSETS = [-0.7, -0.5, 0.7, -0.5, 0.0, 0.1, -0.5, 0.7, 0.5, 0.7]


@pytest.fixture(autouse=True)
def needs_insightface():
    if insightface is None:
        service_missing("insightface is not installed: run `make insightface` (pip install --no-deps)")


def save(graph, path: Path, opset: int = 13) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def const(name: str, array: np.ndarray):
    return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)


def build_scrfd(path: Path) -> Path:
    """SCRFD's signature: input (1, 3, ?, ?), outputs score_8/16/32 (N, 1), bbox_* (N, 4), kps_* (N, 10).

    Only stride 32 fires: an anchor's score is sigmoid(8 * (b - 0.3)), b the mean normalised brightness of the
    128x128 window centred on the anchor (SCRFD's anchor centres sit on multiples of the stride). Its box reaches
    2 strides each way, so a bright 128-px square centred on an anchor is one face whose box is the square.
    """
    nodes = [helper.make_node("ReduceMean", ["input.1"], ["grey"], axes=[1], keepdims=1)]
    inits = [
        const("gain", [8.0]),
        const("shift", [-0.3]),
        const("silent", [-20.0]),
        const("zero", [0.0]),
        numpy_helper.from_array(np.array([-1, 1], dtype=np.int64), "shape_n1"),
        const("zero4", np.zeros((1, 4))),
        const("zero10", np.zeros((1, 10))),
        const("dist", [[2.0, 2.0, 2.0, 2.0]]),
        const("kps", [KPS_OFFSETS]),
    ]
    for s in (8, 16, 32):
        if s == 32:
            nodes += [
                helper.make_node(
                    "AveragePool", ["grey"], ["pool32"], kernel_shape=[128, 128], strides=[32, 32],
                    pads=[64, 64, 32, 32], count_include_pad=1,
                ),
                helper.make_node("Add", ["pool32", "shift"], ["shifted32"]),
                helper.make_node("Mul", ["shifted32", "gain"], ["logit32"]),
            ]  # fmt: skip
        else:  # silent maps of the right size, still computed from the input
            nodes += [
                helper.make_node("AveragePool", ["grey"], [f"pool{s}"], kernel_shape=[s, s], strides=[s, s]),
                helper.make_node("Mul", [f"pool{s}", "zero"], [f"nil{s}"]),
                helper.make_node("Add", [f"nil{s}", "silent"], [f"logit{s}"]),
            ]
        nodes += [
            helper.make_node("Sigmoid", [f"logit{s}"], [f"prob{s}"]),
            helper.make_node("Reshape", [f"prob{s}", "shape_n1"], [f"cell{s}"]),
            helper.make_node("Concat", [f"cell{s}", f"cell{s}"], [f"pair{s}"], axis=1),  # two anchors per cell
            helper.make_node("Reshape", [f"pair{s}", "shape_n1"], [f"score_{s}"]),
            # Boxes and keypoints: constants (in stride units) broadcast over the anchors.
            helper.make_node("Mul", [f"score_{s}", "zero4"], [f"z4_{s}"]),
            helper.make_node("Add", [f"z4_{s}", "dist"], [f"bbox_{s}"]),
            helper.make_node("Mul", [f"score_{s}", "zero10"], [f"z10_{s}"]),
            helper.make_node("Add", [f"z10_{s}", "kps"], [f"kps_{s}"]),
        ]
    outputs = [
        helper.make_tensor_value_info(f"{kind}_{s}", TensorProto.FLOAT, [f"N{s}", width])
        for kind, width in (("score", 1), ("bbox", 4), ("kps", 10))
        for s in (8, 16, 32)
    ]
    graph = helper.make_graph(
        nodes,
        "scrfd_like",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "H", "W"])],
        outputs,
        inits,
    )
    return save(graph, path)


def build_arcface(path: Path) -> Path:
    rng = np.random.default_rng(7)
    graph = helper.make_graph(
        [
            helper.make_node("AveragePool", ["input.1"], ["pooled"], kernel_shape=[4, 4], strides=[4, 4]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("MatMul", ["flat", "proj"], ["683"]),
        ],
        "arcface_like",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, 112, 112])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, [1, 512])],
        [const("proj", rng.standard_normal((3 * 28 * 28, 512)) / 50)],
    )
    return save(graph, path)


def turned_mean_shape(yaw_deg: float) -> np.ndarray:
    from insightface.data import get_object

    mean = get_object("meanshape_68.pkl").astype(np.float64)
    t = np.deg2rad(yaw_deg)
    rot = np.array([[np.cos(t), 0, np.sin(t)], [0, 1, 0], [-np.sin(t), 0, np.cos(t)]])
    return (mean - mean.mean(0)) @ rot.T * 0.6  # crop units: [-1, 1] spans the 192-px crop


def build_landmark_3d68(path: Path, yaw_deg: float) -> Path:
    values = np.zeros((1, 3309), dtype=np.float32)
    values[0, -68 * 3 :] = turned_mean_shape(yaw_deg).reshape(-1)
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["data"], ["m"], axes=[1, 2, 3], keepdims=0),
            helper.make_node("Reshape", ["m", "shape11"], ["m11"]),
            helper.make_node("Mul", ["m11", "zero"], ["z"]),
            helper.make_node("Add", ["z", "landmarks"], ["fc1"]),
        ],
        "landmark_like",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 192, 192])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [1, 3309])],
        [
            const("zero", np.zeros((1, 3309))),
            const("landmarks", values),
            numpy_helper.from_array(np.array([1, 1], dtype=np.int64), "shape11"),
        ],
    )
    return save(graph, path)


@pytest.fixture(scope="module")
def buffalo_dir(tmp_path_factory) -> Path:
    """A directory laid out like an unzipped buffalo_l.zip (only the three files the pack uses)."""
    root = tmp_path_factory.mktemp("buffalo_l")
    build_scrfd(root / "det_10g.onnx")
    build_arcface(root / "w600k_r50.onnx")
    build_landmark_3d68(root / "1k3d68.onnx", yaw_deg=20.0)
    return root


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[:, :, ::-1])


def bright_square(x: int, y: int, size: int, shape=(480, 640)) -> np.ndarray:
    frame = np.zeros((*shape, 3), dtype=np.uint8)
    frame[y : y + size, x : x + size] = 255
    return frame


# --- detector -----------------------------------------------------------------------------------------------------


def test_scrfd_adapter_finds_the_bright_square_with_its_five_keypoints(buffalo_dir):
    detector = InsightFaceDetector(files={"model": buffalo_dir / "det_10g.onnx"}, params={"input_size": [640, 640]})

    faces = detector.detect(bright_square(320, 160, 128))

    assert len(faces) == 1
    assert faces[0].box == pytest.approx((320, 160, 448, 288), abs=1e-3) and faces[0].score > 0.99
    (lex, ley), (rex, rey), (nx, ny), (lmx, lmy), (rmx, rmy) = faces[0].keypoints
    assert lex < nx < rex and ley < ny < lmy and lmx < rmx  # eyes above the nose above the mouth, left to right
    assert detector.detect(np.zeros((480, 640, 3), np.uint8)) == []


@pytest.mark.parametrize("image_name", ["square", "astronaut", "wide"])
def test_scrfd_adapter_agrees_with_insightface_scrfd_detect(buffalo_dir, astronaut, image_name):
    from insightface.model_zoo.scrfd import SCRFD

    image = {
        "square": bright_square(96, 288, 128),
        "astronaut": astronaut,
        "wide": bright_square(900, 200, 300, shape=(720, 1280)),
    }[image_name]
    ours = InsightFaceDetector(
        files={"model": buffalo_dir / "det_10g.onnx"},
        params={"input_size": [640, 640], "det_thresh": 0.5, "nms_thresh": 0.4, "max_faces": 0},
    ).detect(image)
    theirs = SCRFD(model_file=str(buffalo_dir / "det_10g.onnx"))
    theirs.prepare(-1, input_size=(640, 640), det_thresh=0.5, nms_thresh=0.4)
    dets, kpss = theirs.detect(image, input_size=(640, 640))

    assert len(ours) == len(dets) > 0
    np.testing.assert_allclose([f.box for f in ours], dets[:, :4], atol=1e-3)
    np.testing.assert_allclose([f.score for f in ours], dets[:, 4], atol=1e-6)
    np.testing.assert_allclose([f.keypoints for f in ours], kpss, atol=1e-3)


def test_scrfd_decoding_refuses_outputs_of_another_shape():
    with pytest.raises(ValueError, match="6, 9, 10 or 15 outputs"):
        decode_scrfd([np.zeros((10, 1))] * 4, input_hw=(640, 640), scale=1.0)
    with pytest.raises(ValueError, match="stride 8"):
        decode_scrfd([np.zeros((10, 1))] * 3 + [np.zeros((10, 4))] * 3 + [np.zeros((10, 10))] * 3,
                     input_hw=(640, 640), scale=1.0)  # fmt: skip


# --- embedder -----------------------------------------------------------------------------------------------------


def test_embedder_matches_insightface_arcface_on_the_same_face(buffalo_dir, astronaut):
    from insightface.app.common import Face as InsightFace
    from insightface.model_zoo.arcface_onnx import ArcFaceONNX

    kps = ((180.0, 110.0), (240.0, 105.0), (212.0, 140.0), (185.0, 175.0), (238.0, 172.0))  # the astronaut's face
    embedder = InsightFaceEmbedder(files={"model": buffalo_dir / "w600k_r50.onnx"}, params={"model_id": "x"})

    ours = embedder.embed(astronaut, Face(box=(160, 70, 260, 200), score=0.9, keypoints=kps))

    rec = ArcFaceONNX(model_file=str(buffalo_dir / "w600k_r50.onnx"))
    theirs = rec.get(astronaut, InsightFace(kps=np.asarray(kps, dtype=np.float32)))
    assert ours.shape == (512,) and np.linalg.norm(ours) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(ours, theirs / np.linalg.norm(theirs), atol=1e-5)
    with pytest.raises(ValueError, match="5 keypoints"):
        embedder.embed(astronaut, Face(box=(160, 70, 260, 200), score=0.9))


def default_pack_file(name: str) -> Path:
    from django.conf import settings

    path = Path(settings.MODEL_DIR) / "default" / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `python manage.py model_packs install default` (make test does)")
    return path


def test_insightface_model_zoo_loads_the_default_packs_faceplugin_arcface(astronaut):
    from insightface.model_zoo import get_model
    from insightface.model_zoo.arcface_onnx import ArcFaceONNX

    path = default_pack_file("fr_feature.onnx")
    rec = get_model(str(path), providers=["CPUExecutionProvider"])
    assert isinstance(rec, ArcFaceONNX)
    assert rec.input_size == (112, 112) and rec.output_shape[-1] == 512
    assert (rec.input_mean, rec.input_std) == (127.5, 127.5)

    # The project's embedder and insightface's give the same vector for the same face.
    from proctoring.vision.arcface import ArcFaceEmbedder

    kps = ((180.0, 110.0), (240.0, 105.0), (212.0, 140.0), (185.0, 175.0), (238.0, 172.0))
    ours = ArcFaceEmbedder(files={"model": path}, params={"input_mean": 127.5, "input_std": 127.5, "rgb": True})
    vector = ours.embed(astronaut, Face(box=(160, 70, 260, 200), score=0.9, keypoints=kps))
    from insightface.app.common import Face as InsightFace

    theirs = rec.get(astronaut, InsightFace(kps=np.asarray(kps, dtype=np.float32)))
    assert float(np.dot(vector, theirs / np.linalg.norm(theirs))) > 0.999


def test_insightface_norm_crop_matches_the_projects_alignment(astronaut):
    import cv2
    from insightface.utils import face_align

    from proctoring.vision.arcface import ARCFACE_TEMPLATE, similarity_transform

    rng = np.random.default_rng(3)
    for _ in range(5):
        # Five points of a plausible face, turned, scaled and moved at random.
        angle, scale = rng.uniform(-0.5, 0.5), rng.uniform(0.8, 2.5)
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        kps = (ARCFACE_TEMPLATE - 56) @ rot.T * scale + rng.uniform(150, 350, size=2) + rng.normal(0, 1.5, (5, 2))
        theirs_m = face_align.estimate_norm(kps.astype(np.float32), 112)
        ours_m = similarity_transform(kps, ARCFACE_TEMPLATE)
        np.testing.assert_allclose(ours_m, theirs_m, atol=1e-4)
        theirs = face_align.norm_crop(astronaut, kps.astype(np.float32), 112)
        ours = cv2.warpAffine(astronaut, ours_m, (112, 112), borderValue=0.0)
        assert np.abs(theirs.astype(int) - ours.astype(int)).max() <= 1


# --- head pose ----------------------------------------------------------------------------------------------------


def test_pose_adapter_reads_the_turned_head_and_agrees_with_insightface_landmark(buffalo_dir, astronaut):
    from insightface.app.common import Face as InsightFace
    from insightface.model_zoo.landmark import Landmark

    box = (160.0, 70.0, 260.0, 200.0)
    estimator = InsightFacePoseEstimator(files={"model": buffalo_dir / "1k3d68.onnx"})

    pose, keypoints = estimator.estimate_with_keypoints(astronaut, Face(box=box, score=0.9))

    # The synthetic model's landmarks are the mean face turned 20 degrees towards the image's right.
    assert pose.yaw == pytest.approx(20.0, abs=0.5)
    assert abs(pose.pitch) < 0.5 and abs(pose.roll) < 0.5
    assert keypoints is None
    face = InsightFace(bbox=np.asarray(box, dtype=np.float32))
    Landmark(model_file=str(buffalo_dir / "1k3d68.onnx")).get(astronaut, face)
    pitch, yaw, roll = face.pose
    assert (pose.yaw, pose.pitch, pose.roll) == pytest.approx((yaw, pitch, roll), abs=0.01)


def test_pose_adapter_refuses_a_2d_landmark_model(tmp_path):
    # 2d106det.onnx's shape: 192x192 -> 212 (106 2D points, no pose).
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["data"], ["m"], axes=[2, 3], keepdims=0),
         helper.make_node("MatMul", ["m", "w"], ["fc1"])],
        "landmark_2d",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 192, 192])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [1, 212])],
        [const("w", np.zeros((3, 212)))],
    )  # fmt: skip
    estimator = InsightFacePoseEstimator(files={"model": save(graph, tmp_path / "2d106det.onnx")})

    with pytest.raises(packs.ModelPackError, match="landmark_3d_68"):
        estimator.estimate(np.zeros((200, 200, 3), np.uint8), Face(box=(50, 50, 150, 150), score=1.0))


# --- the pack -----------------------------------------------------------------------------------------------------


def face_only_manifest(tmp_path: Path, monkeypatch, name: str) -> Path:
    """The real manifest minus the objects role, which is the default pack's SSD (tested with the default pack)."""
    manifest = json.loads((packs.MANIFEST_DIR / f"{name}.json").read_text())
    assert manifest["models"].pop("objects") == {"from_pack": "default"}
    directory = tmp_path / "manifests"
    directory.mkdir(exist_ok=True)
    (directory / f"{name}.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(packs, "MANIFEST_DIR", directory)
    return directory


def test_buffalo_l_installs_from_an_operator_directory_and_analyses_a_frame(buffalo_dir, tmp_path, monkeypatch):
    from proctoring.vision.pipeline import Analyzer

    face_only_manifest(tmp_path, monkeypatch, "buffalo_l")
    operator = tmp_path / "buffalo_l_unzipped"
    shutil.copytree(buffalo_dir, operator)
    (operator / "genderage.onnx").write_bytes(b"not used by the pack")

    messages: list[str] = []
    report = packs.install_pack("buffalo_l", root=tmp_path / "models", operator_dir=operator, progress=messages.append)

    assert report.ok and sorted(report.checked) == sorted(BUFFALO_FILES)
    manifest, models = packs.build_models("buffalo_l", root=tmp_path / "models")
    analyzer = Analyzer(manifest=manifest, models=models)
    analyzer.load()
    obs = analyzer.analyze(bright_square(320, 160, 128), objects=frozenset())
    assert obs.face_count >= 1 and obs.pose is not None and obs.pose.yaw == pytest.approx(20.0, abs=0.5)
    assert analyzer.embedding_model_id == "insightface-buffalo_l-w600k_r50"

    (tmp_path / "models" / "buffalo_l" / "w600k_r50.onnx").write_bytes(b"tampered")
    assert not packs.verify_pack("buffalo_l", root=tmp_path / "models").ok


def test_buffalo_install_without_network_or_directory_says_how_to_install_offline(tmp_path, settings):
    from django.core.management import CommandError, call_command

    settings.MODEL_DIR = tmp_path
    with pytest.raises(CommandError) as caught:
        call_command("model_packs", "install", "buffalo_s")
    message = str(caught.value)
    assert "cannot download https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_s.zip" in message
    assert "--from DIR" in message


@pytest.mark.parametrize("name", ["buffalo_l", "buffalo_s"])
def test_buffalo_manifests_state_the_non_commercial_licence_plainly(name):
    manifest = packs.load_manifest(name)
    assert any("NON-COMMERCIAL" in caveat for caveat in manifest.caveats)
    for pf in manifest.files.values():
        if pf.source["kind"] == "url":
            assert pf.licence.startswith("NON-COMMERCIAL"), pf.name
    assert "NON-COMMERCIAL" in manifest.summary
    inherited = {k: v for k, v in manifest.models["objects"].items() if k != "inherited_from"}
    assert inherited == packs.load_manifest("default").models["objects"]
    assert manifest.role_pack("objects") == "default" and manifest.role_pack("embedder") == manifest.name
