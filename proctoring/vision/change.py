"""Has the picture changed since the object detector last looked? A tiny signature per frame and a block-wise
comparison, so a worker can skip the phone detector (two thirds of a frame's cost) on a frame that cannot give a
different answer.

The signature is the frame in grey at 32x24 (768 bytes), lightly blurred: each cell is the mean of about 20x20
pixels, so camera noise averages out, while anything the size of a phone in the frame changes whole cells. The
comparison forgives movement: each cell is compared with the best-matching cell within one cell (about 20 pixels)
in the other signature, so a student who shifts in the chair is "unchanged", while new content (a phone, a face,
an empty chair) matches nothing nearby. It then takes the mean of those differences in each of 4x4 blocks and
reports the largest, so a change in one corner is not diluted by a still background elsewhere.

The skip rule itself (how many frames in a row may re-use a result) belongs to the caller; see
proctoring.pool.base.analyze_job and docs/protocol.md.
"""

from __future__ import annotations

import numpy as np

SIGNATURE_SIZE = (32, 24)  # width, height
BLOCKS = (4, 4)  # columns, rows: blocks of 8x6 cells, about 160x120 pixels of a 640x480 frame
# Grey levels (0-255) of mean change in one block. Measured on the evaluation photos with webcam-like noise
# (tests/proctoring/vision/test_change.py): the same scene, moved by up to 17 pixels, at most 8; the real phone
# held up beside the student 16 to 32; a second person, someone else, or the empty chair 50 and more.
CHANGE_THRESHOLD = 10.0


def signature(image: np.ndarray) -> bytes:
    """The 32x24 grey thumbnail of a BGR uint8 frame, as bytes."""
    import cv2  # lazy: OpenCV stays out of the ASGI server

    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    small = cv2.resize(grey, SIGNATURE_SIZE, interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(small, (3, 3), 0).astype(np.uint8).tobytes()


def change(a: bytes, b: bytes) -> float:
    """The largest block-mean absolute difference between two signatures, in grey levels. A signature of another
    size (a different build) counts as completely changed."""
    width, height = SIGNATURE_SIZE
    if len(a) != width * height or len(b) != width * height:
        return 255.0
    x = np.frombuffer(a, np.uint8).reshape(height, width).astype(np.int16)
    y = np.pad(np.frombuffer(b, np.uint8).reshape(height, width).astype(np.int16), 1, mode="edge")
    diff = np.full((height, width), 255, np.int16)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            np.minimum(diff, np.abs(x - y[dy : dy + height, dx : dx + width]), out=diff)
    cols, rows = BLOCKS
    blocks = diff.astype(np.float32).reshape(rows, height // rows, cols, width // cols).mean(axis=(1, 3))
    return float(blocks.max())
