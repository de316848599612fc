"""Would batching frames of several students in one inference call pay? Written to bench/results/batching.json.

    python bench/batching.py [--rounds 60] [--core 0]

Issue 8 lists it as a lever: "batch across students in a worker, where the runtime gains from it". This runs the
default pack's phone detector (SSD-MobileNet-v2 through OpenVINO, two thirds of a frame's model time when it runs)
on one pinned core with one thread, as a worker does, compiled for batches of 1, 2 and 4 frames, on real
evaluation frames, and reports the inference time per frame at each batch size, interleaved in
rounds so that every size sees the same machine. A batch also makes every frame in it wait for the slowest: that
cost is not in these figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import evalset  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "batching.json"
BATCHES = (1, 2, 4)
FRAME_SOURCES = ("astronaut", "webcam_man", "grace_hopper", "zidane")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--core", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    os.sched_setaffinity(0, {args.core})
    os.environ["INFERENCE_THREADS"] = "1"
    evalset._setup_django()
    from proctoring.vision import ssd
    from proctoring.vision.base import openvino_compiled
    from proctoring.vision.pipeline import get_analyzer

    if not evalset.is_fetched():
        raise SystemExit("the evaluation set is not fetched: run `python bench/evalset.py fetch`")
    analyzer = get_analyzer(None, threads=1)
    frames = [evalset.webcam_frame(evalset.load(name)) for name in FRAME_SOURCES]

    objects = analyzer.object_detector
    tensors = [objects.preprocess(frame)[0] for frame in frames]
    size = int(objects.params.get("input_size", 300))
    nets: dict[int, Any] = {}
    inputs: dict[int, dict[str, np.ndarray]] = {}
    for batch in BATCHES:
        shape = [batch, size, size, 3]
        nets[batch] = openvino_compiled(
            objects.files["model"], threads=1, reshape={ssd.INPUT_TENSOR: shape, ssd.IMAGE_TENSOR: shape},
            pixels=ssd.PIXELS,
        )  # fmt: skip
        # The cut graph keeps the image parameter; only its static shape matters (SSDMobileNetDetector.infer).
        inputs[batch] = {
            ssd.INPUT_TENSOR: np.concatenate([tensors[i % len(frames)] for i in range(batch)], axis=0),
            ssd.IMAGE_TENSOR: np.zeros(shape, np.uint8),
        }

    # The same answers, batched or not: each frame's class logits against the detector's own batch-1 run.
    reference = [np.asarray(objects.infer(t)[0]) for t in tensors]
    largest_difference = 0.0
    for batch, net in nets.items():
        outputs = net(inputs[batch])
        logits = next(np.asarray(outputs[out]) for out in net.outputs if out.get_any_name() == ssd.LOGITS_TENSOR)
        for i in range(batch):
            largest_difference = max(largest_difference, float(np.abs(logits[i] - reference[i % len(frames)][0]).max()))

    per_frame: dict[int, list[float]] = {batch: [] for batch in BATCHES}
    for batch, net in nets.items():
        for _ in range(5):
            net(inputs[batch])
    for _ in range(args.rounds):
        for batch, net in nets.items():
            start = time.perf_counter()
            net(inputs[batch])
            per_frame[batch].append((time.perf_counter() - start) * 1000.0 / batch)
    medians = {batch: round(statistics.median(per_frame[batch]), 2) for batch in BATCHES}
    result: dict[str, Any] = {
        "objects": {
            "ms_per_frame_median": {str(b): m for b, m in medians.items()},
            "saving_vs_batch_1": {str(b): round(1 - m / medians[1], 3) for b, m in medians.items()},
        }
    }
    result["largest_logit_difference_vs_unbatched"] = round(largest_difference, 4)
    result["meta"] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "precision": os.getenv("INFERENCE_PRECISION", "auto"),
        "rounds": args.rounds,
        "load_average_at_end": os.getloadavg(),
        "command": "python bench/batching.py " + " ".join(argv),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
