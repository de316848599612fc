"""INT8 post-training quantisation of the phone detector's IR with NNCF, run at model install in its own venv.

`python ssd_int8.py IN.xml OUT.xml IMAGE...` (the interpreter of .venv-quantize: nncf, openvino, numpy, OpenCV).
No Django and nothing else from this repository: the quantisation venv holds only requirements-quantize.txt, and the
runtime venv never needs NNCF (scikit-learn, scipy) nor this file.

Calibration: the evaluation photos (bench/evalset.py fetch), each as a whole image, as a 640x480 webcam-like centre
crop and mirrored, preprocessed exactly as proctoring.vision.ssd feeds the detector (RGB, stretched to 300x300,
x * 2/255 - 1). The MIXED preset (symmetric weights, asymmetric activations) with NNCF's default fast bias correction.
"""

from __future__ import annotations

import sys

import numpy as np

INPUT_TENSOR = "Preprocessor/sub:0"
IMAGE_TENSOR = "image_tensor:0"
SIZE = 300


def variants(image: np.ndarray) -> list[np.ndarray]:
    import cv2  # lazy: OpenCV stays out of the ASGI server

    h, w = image.shape[:2]
    crop = image
    if w * 3 > h * 4:  # wider than 4:3: the webcam's centre crop
        cw = h * 4 // 3
        crop = image[:, (w - cw) // 2 : (w - cw) // 2 + cw]
    elif w * 3 < h * 4:
        ch = w * 3 // 4
        crop = image[(h - ch) // 2 : (h - ch) // 2 + ch]
    webcam = cv2.resize(crop, (640, 480), interpolation=cv2.INTER_AREA)
    return [image, webcam, webcam[:, ::-1]]


def tensors(image: np.ndarray) -> dict[str, np.ndarray]:
    import cv2  # lazy: OpenCV stays out of the ASGI server

    rgb = cv2.resize(image, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)[:, :, ::-1].astype(np.float32)
    return {
        INPUT_TENSOR: ((rgb - 127.5) / 127.5)[None],
        IMAGE_TENSOR: np.zeros((1, SIZE, SIZE, 3), np.uint8),
    }


def main(argv: list[str]) -> int:
    import cv2  # lazy: OpenCV stays out of the ASGI server
    import nncf  # lazy: only in the quantisation venv
    import openvino as ov  # lazy: a runtime loads with its first model

    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    src, out, paths = argv[0], argv[1], argv[2:]
    frames = []
    for path in paths:
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is not None:
            frames.extend(variants(image))
    if len(frames) < 10:
        print(f"only {len(frames)} calibration frames from {len(paths)} files", file=sys.stderr)
        return 1
    model = ov.Core().read_model(src)
    model.reshape({INPUT_TENSOR: [1, SIZE, SIZE, 3], IMAGE_TENSOR: [1, SIZE, SIZE, 3]})
    quantized = nncf.quantize(
        model,
        nncf.Dataset(frames, tensors),
        subset_size=len(frames),
        preset=nncf.QuantizationPreset.MIXED,
    )
    ov.save_model(quantized, out, compress_to_fp16=False)
    print(f"quantized {src} to INT8 on {len(frames)} calibration frames")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
