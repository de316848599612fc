"""The phone detector in FP32 and INT8, side by side on one core: time per inference and phone scores on the
evaluation set. Writes bench/results/int8.json.

    .venv/bin/python bench/int8.py

FP32 is the default pack's IR, INT8 the default-int8 pack's (quantised at install by proctoring/vision/ssd_int8.py;
`make int8-pack`). Timings alternate FP32 and INT8 rounds on core 0, so that both see the same machine.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import evalset

RESULTS = Path(__file__).resolve().parent / "results" / "int8.json"
ROUNDS = 5


def main() -> int:
    evalset._setup_django()
    import numpy as np
    from django.conf import settings

    from proctoring.vision import ssd

    if not evalset.is_fetched():
        raise SystemExit("the evaluation set is not fetched: run `python bench/evalset.py fetch`")
    packs_dir = Path(settings.DATA_DIR) / "models"
    anchors = packs_dir / "default" / "ssd_mobilenet_v2_coco.anchors.npy"
    manifest = json.loads((Path(ssd.__file__).parent / "packs" / "default-int8.json").read_text())
    params = {**manifest["models"]["objects"]["params"], "thresholds": {"cell phone": 0.2}}
    models = {
        name: ssd.SSDMobileNetDetector(
            files={"model": packs_dir / pack / "ssd_mobilenet_v2_coco.xml", "anchors": anchors}, params=params
        )
        for name, pack in (("fp32", "default"), ("int8", "default-int8"))
    }
    for model in models.values():
        model.load()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    items = evalset.items()
    frames = []
    for item in items:
        image = evalset.load(item.name)
        frames.append((item.name, item.phone, image))
        frames.append((item.name + " (webcam 640x480)", item.phone, evalset.webcam_frame(image)))
    tensors = [models["fp32"].preprocess(image)[0] for _, _, image in frames]
    times: dict[str, list[float]] = {name: [] for name in models}
    for model in models.values():
        for x in tensors[:5]:
            model.infer(x)
    for _ in range(ROUNDS):
        for name, model in models.items():
            for x in tensors:
                start = time.perf_counter()
                model.infer(x)
                times[name].append((time.perf_counter() - start) * 1000)
    scores: dict[str, dict[str, float]] = {name: {} for name in models}
    for name, model in models.items():
        for label, _, image in frames:
            found = [o.score for o in model.detect(image, labels=frozenset({"cell phone"}))]
            scores[name][label] = round(max(found), 4) if found else 0.0
    phones = {label for label, phone, _ in frames if phone}
    result = {
        "what": "SSD-MobileNet-v2 COCO phone detector, one inference at 300x300 on one core (ms), and its best "
        "cell-phone score per evaluation frame",
        "frames": len(frames),
        "rounds": ROUNDS,
        "median_ms": {name: round(float(np.median(t)), 2) for name, t in times.items()},
        "p95_ms": {name: round(float(np.percentile(t, 95)), 2) for name, t in times.items()},
        "threshold": manifest["models"]["objects"]["params"]["thresholds"]["cell phone"],
        "phone_scores": {name: {k: v for k, v in s.items() if k in phones} for name, s in scores.items()},
        "highest_score_without_a_phone": {
            name: max((v for k, v in s.items() if k not in phones), default=0.0) for name, s in scores.items()
        },
    }
    result["speedup"] = round(result["median_ms"]["fp32"] / result["median_ms"]["int8"], 2)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("median_ms", "speedup", "highest_score_without_a_phone")}))
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
