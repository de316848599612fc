"""The explicit registry of model classes: the name a manifest uses -> where the class lives.

Values are "module:Class" strings, resolved on first use, so that listing or verifying a pack never imports the
modules of other packs (insightface, ultralytics' export helpers). A manifest may also name a class directly as
"package.module:Class" for an operator's own plug-in; names without a colon must be in this table.

To add a model: write a subclass of one of the role bases in ``base.py`` and add one line here.
"""

from __future__ import annotations

import importlib

from .base import Model

MODEL_CLASSES: dict[str, str] = {
    # default pack (registry packages only)
    "blazeface": "proctoring.vision.blazeface:BlazeFaceDetector",
    "arcface_onnx": "proctoring.vision.arcface:ArcFaceEmbedder",
    "facemesh_pose": "proctoring.vision.facemesh:FaceMeshPoseEstimator",
    "ssd_coco_openvino": "proctoring.vision.ssd:SSDMobileNetDetector",
    # insightface pack (vision-extra)
    "insightface_detector": "proctoring.vision.insightface_pack:InsightFaceDetector",
    "insightface_embedder": "proctoring.vision.insightface_pack:InsightFaceEmbedder",
    "insightface_pose": "proctoring.vision.insightface_pack:InsightFacePoseEstimator",
    # yolo pack (vision-extra)
    "yolo_onnx": "proctoring.vision.yolo:YoloOnnxDetector",
}


class UnknownModelClass(LookupError):
    pass


def model_class(name: str) -> type[Model]:
    """The class a manifest names. Raises UnknownModelClass for a name that is neither registered nor a dotted path."""
    target = MODEL_CLASSES.get(name) or (name if ":" in name else None)
    if target is None:
        raise UnknownModelClass(f"unknown model class {name!r}; known: {', '.join(sorted(MODEL_CLASSES))}")
    module_name, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UnknownModelClass(f"model class {name!r} ({target}) cannot be imported: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Model)):
        raise UnknownModelClass(f"{target} is not a proctoring.vision.base.Model subclass")
    return cls
