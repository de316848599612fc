"""Could the face detector be skipped on an unchanged frame, as the phone detector is? Written to
bench/results/face_box_reuse.json.

    python bench/face_box_reuse.py

The skip rule re-uses the phone detector's result on a frame that has not changed (docs/protocol.md). The face
detector costs another 2.4 ms a frame, but its box also places Face Mesh, whose landmarks become the pose and gaze
that looking away is decided on. This measures what a re-used box would do to them: each evaluation photo with a
face, as a 640x480 webcam frame, moved by a few pixels as a student moves between frames (the capacity benchmark
moves its frames by up to 4; the change measure forgives up to about 20), and Face Mesh run on the moved frame twice,
once with the face detector's fresh box and once with the box from the unmoved frame. It reports how far apart the
two poses and gazes are, per face.

`pipeline_rule` then runs the rule the pipeline keeps (proctoring.vision.pipeline: the remembered faces are re-used
unless Face Mesh's keypoints in the remembered box lie more than FACE_DRIFT of its width from the remembered ones,
in which case the face detector runs again): per face and shift, whether it re-used the box, and how far its pose
and gaze lie from a fresh analysis of the moved frame.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import evalset  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "face_box_reuse.json"
SOURCES = ("astronaut", "webcam_man", "grace_hopper", "tom_hanks", "zidane", "friends")
SHIFTS = ((4, 4), (-4, 3), (10, 0), (0, 10), (17, 0), (-17, -8))


def apart(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(abs(a - b), 2)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    os.environ["INFERENCE_THREADS"] = "1"
    evalset._setup_django()
    from proctoring.vision.pipeline import get_analyzer

    if not evalset.is_fetched():
        raise SystemExit("the evaluation set is not fetched: run `python bench/evalset.py fetch`")
    analyzer = get_analyzer(None, threads=1)
    estimator = analyzer.pose_estimator
    faces = []
    for name in SOURCES:
        frame = evalset.webcam_frame(evalset.load(name))
        measured = analyzer.main_face(analyzer.detector.detect(frame))
        if measured is None:
            continue
        rows = []
        for dx, dy in SHIFTS:
            moved = np.roll(frame, (dy, dx), axis=(0, 1))
            fresh = analyzer.main_face(analyzer.detector.detect(moved))
            pose_fresh, _, gaze_fresh = estimator.estimate_with_gaze(moved, fresh) if fresh else (None, None, None)
            pose_old, _, gaze_old = estimator.estimate_with_gaze(moved, measured)
            rows.append({
                "shift_px": [dx, dy],
                "yaw_apart": apart(pose_fresh and pose_fresh.yaw, pose_old and pose_old.yaw),
                "pitch_apart": apart(pose_fresh and pose_fresh.pitch, pose_old and pose_old.pitch),
                "gaze_yaw_apart": apart(gaze_fresh and gaze_fresh.yaw, gaze_old and gaze_old.yaw),
                "gaze_only_one_way": (gaze_fresh is None) != (gaze_old is None),
            })  # fmt: skip
        pose_gaps = [r[k] for r in rows for k in ("yaw_apart", "pitch_apart") if r[k] is not None]
        # The pipeline's rule: the faces as a measured frame's observation stores them (refined keypoints).
        stored = analyzer.analyze(frame, objects=frozenset())
        remembered = tuple(stored.faces)
        rule = []
        for dx, dy in SHIFTS:
            moved = np.roll(frame, (dy, dx), axis=(0, 1))
            fresh_obs = analyzer.analyze(moved, objects=frozenset())
            kept = analyzer.analyze(moved, objects=frozenset(), faces=remembered)
            rule.append({
                "shift_px": [dx, dy],
                "reused_box": "detect" not in kept.timings_ms,
                "yaw_apart": apart(fresh_obs.pose and fresh_obs.pose.yaw, kept.pose and kept.pose.yaw),
                "pitch_apart": apart(fresh_obs.pose and fresh_obs.pose.pitch, kept.pose and kept.pose.pitch),
                "gaze_yaw_apart": apart(fresh_obs.gaze and fresh_obs.gaze.yaw, kept.gaze and kept.gaze.yaw),
                # How far fresh analyses alone move between the unmoved and the moved frame: the noise floor.
                "fresh_yaw_moves": apart(stored.pose and stored.pose.yaw, fresh_obs.pose and fresh_obs.pose.yaw),
                "fresh_pitch_moves": apart(stored.pose and stored.pose.pitch,
                                           fresh_obs.pose and fresh_obs.pose.pitch),
            })  # fmt: skip
        rule_gaps = [r[k] for r in rule if r["reused_box"] for k in ("yaw_apart", "pitch_apart") if r[k] is not None]
        noise = [r[k] for r in rule for k in ("fresh_yaw_moves", "fresh_pitch_moves") if r[k] is not None]
        faces.append({
            "image": name,
            "face_width_px": round(measured.box[2] - measured.box[0]),
            "worst_pose_apart_deg": max(pose_gaps) if pose_gaps else None,
            "shifts": rows,
            "pipeline_rule": {
                "reused_box": sum(r["reused_box"] for r in rule),
                "of": len(rule),
                "worst_pose_apart_deg": max(rule_gaps) if rule_gaps else None,
                "fresh_pose_moves_up_to_deg": max(noise) if noise else None,
                "shifts": rule,
            },
        })  # fmt: skip
    result = {
        "faces": faces,
        "worst_pose_apart_deg": max((f["worst_pose_apart_deg"] or 0.0) for f in faces),
        "pipeline_rule_worst_pose_apart_deg": max((f["pipeline_rule"]["worst_pose_apart_deg"] or 0.0) for f in faces),
        "meta": {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
            "models": analyzer.models,
            "command": "python bench/face_box_reuse.py " + " ".join(argv),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for face in faces:
        rule = face["pipeline_rule"]
        print(f"{face['image']:14s} {face['face_width_px']:4d} px  worst pose apart {face['worst_pose_apart_deg']} deg;"
              f" the pipeline's rule re-used the box on {rule['reused_box']}/{rule['of']} shifts, worst pose apart "
              f"{rule['worst_pose_apart_deg']} deg (fresh poses move by up to "
              f"{rule['fresh_pose_moves_up_to_deg']})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
