"""`python manage.py proctor_analyze IMAGE [--enrolled REF ...] [--pack NAME] [--objects ...] --json`.

Runs the vision engine on one photo, as the live pipeline would on one webcam frame, and prints what it sees and
the single-frame events (before any temporal rule). With --enrolled, the reference photos are enrolled in memory
(the same quality checks as face enrolment, nothing stored) and the frame is compared against them.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError

from proctoring.frame_signals import frame_signals
from proctoring.services.enrolment import enrolment_check_frame
from proctoring.vision.base import l2_normalise
from proctoring.vision.coco import COCO80
from proctoring.vision.frames import FrameError, decode_frame
from proctoring.vision.packs import ModelPackError
from proctoring.vision.pipeline import get_analyzer
from proctoring.vision.types import EnrolledFace, Gaze, Pose

# Photos from disk may be larger than webcam frames (an ID photo from a phone); the header check still runs first.
FILE_MAX_BYTES = 25_000_000
FILE_MAX_PIXELS = 50_000_000
FILE_MAX_SIDE = 12_000  # a 50 Mpx 3:2 photo is 8660x5773; the aspect bound (4:1) still applies


def read_image(path: Path) -> np.ndarray:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        return decode_frame(data, max_bytes=FILE_MAX_BYTES, max_pixels=FILE_MAX_PIXELS, max_side=FILE_MAX_SIDE)
    except FrameError as exc:
        raise CommandError(f"{path}: {exc.message} ({exc.reason})") from exc


def enrol_in_memory(analyzer, paths: list[Path]) -> EnrolledFace:
    """The same template face_enrol would store, built from reference photos without touching the database."""
    vectors, poses, gazes = [], [], []
    for path in paths:
        check = enrolment_check_frame(image=read_image(path), analyzer=analyzer)
        if not check.ok:
            raise CommandError(f"reference {path} cannot be enrolled: {check.message} ({check.reason})")
        vectors.append(np.asarray(check.embedding, dtype=np.float32))
        if check.pose is not None:
            poses.append(check.pose)
        if check.gaze is not None:
            gazes.append(check.gaze)
    mean = l2_normalise(np.mean(vectors, axis=0))
    neutral = (
        Pose(*(statistics.median(getattr(p, axis) for p in poses) for axis in ("yaw", "pitch", "roll")))
        if poses
        else Pose(0.0, 0.0, 0.0)
    )
    return EnrolledFace(
        embedding=tuple(float(v) for v in mean),
        pack=analyzer.embedding_pack,
        model_id=analyzer.embedding_model_id,
        neutral=neutral,
        neutral_gaze=Gaze(statistics.median(g.yaw for g in gazes), statistics.median(g.pitch for g in gazes))
        if gazes
        else None,
    )


class Command(BaseCommand):
    help = "Analyse one image with the vision engine and print faces, identity, pose, objects and events."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        parser.add_argument("image", type=Path)
        parser.add_argument("--enrolled", type=Path, nargs="+", default=[], metavar="REF_IMAGE")
        parser.add_argument("--pack", default=None)
        parser.add_argument(
            "--objects", nargs="+", default=["cell phone"], metavar="LABEL", help='COCO labels (default "cell phone")'
        )
        parser.add_argument("--yaw-limit", type=float, default=30.0)
        parser.add_argument("--pitch-limit", type=float, default=25.0)
        parser.add_argument("--json", action="store_true", help="print one JSON object (the default output too)")

    def handle(self, *args, image: Path, enrolled: list[Path], pack: str | None, objects: list[str], **options):

        unknown = sorted(set(objects) - set(COCO80))
        if unknown:
            raise CommandError(f"unknown COCO labels: {', '.join(unknown)}")
        frame = read_image(image)
        try:
            analyzer = get_analyzer(pack)
        except ModelPackError as exc:
            raise CommandError(str(exc)) from exc
        reference = enrol_in_memory(analyzer, enrolled) if enrolled else None
        obs = analyzer.analyze(frame, enrolled=reference, objects=frozenset(objects))
        events = frame_signals(obs, yaw_limit=options["yaw_limit"], pitch_limit=options["pitch_limit"])
        result = {
            "faces": [{"box": [round(v, 1) for v in f.box], "score": round(f.score, 4)} for f in obs.faces],
            "identity": None
            if obs.identity is None
            else {
                "similarity": round(obs.identity.similarity, 4),
                "threshold": obs.identity.threshold,
                "match": obs.identity.match,
            },
            "pose": None
            if obs.pose is None
            else {"yaw": round(obs.pose.yaw, 1), "pitch": round(obs.pose.pitch, 1), "roll": round(obs.pose.roll, 1)},
            # Where the main face's eyes look, in degrees (relative to the enrolment's when one is given); null when
            # no open eyes can be seen or the pack has no gaze model.
            "gaze": None if obs.gaze is None else {"yaw": round(obs.gaze.yaw, 1), "pitch": round(obs.gaze.pitch, 1)},
            "objects": [
                {"label": o.label, "box": [round(v, 1) for v in o.box], "score": round(o.score, 4)} for o in obs.objects
            ],
            "events": events,
            "timings_ms": {k: round(v, 2) for k, v in obs.timings_ms.items()},
            "models": obs.models,
        }
        self.stdout.write(json.dumps(result, indent=None if options["json"] else 2))
