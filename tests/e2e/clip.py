"""Y4M clips for Chromium's fake webcam, built from the real photos of the evaluation set.

Chromium's `--use-file-for-fake-video-capture=clip.y4m` plays a raw YUV4MPEG2 file to `getUserMedia` and loops it.
The browser test launches one browser per phase with that phase's clip (enrolment face, the right person, someone
else, two faces, nobody, a phone), because a single looping clip would make each phase depend on timing.

Format: 640x480, 4:2:0 planar (I420, what `cv2.COLOR_BGR2YUV_I420` produces), a low frame rate to keep files small.
Each frame is the photo shifted by a pixel or two, so that the stream looks like a (very still) camera rather than
one repeated buffer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

WIDTH = 640
HEIGHT = 480


@dataclass(frozen=True)
class Source:
    """One phase's picture: a photo of the evaluation set, optionally cropped (rows, cols) before framing."""

    file: str
    rows: tuple[int, int] | None = None
    cols: tuple[int, int] | None = None


# Photos per phase (MODELS.md); file names as bench/evalset.py stores them under DATA_DIR/evalset.
PHASES: dict[str, Source | None] = {
    # The top 384 rows of the 512x512 portrait: 4:3 with the whole head in frame, as a webcam would show it.
    "enrol": Source("astronaut.png", rows=(0, 384)),  # also the right person during the exam
    "other_person": Source("grace_hopper.jpg"),
    "two_faces": Source("zidane.jpg"),
    # Nobody: an empty, evenly lit wall (built below, no photo needed).
    "nobody": None,
    # The only real phone photo in any registry package: face-api's sample2.jpg; the phone lies on the couch at
    # about (68,1249)-(314,1345), and this crop makes a webcam-like 4:3 frame around it.
    "phone": Source("sample2.jpg", rows=(767, 1367), cols=(0, 800)),
}


def fit(image: np.ndarray, *, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """Scale and centre-crop a BGR image to width x height (cover, no letterbox bars: webcams have none)."""
    h, w = image.shape[:2]
    scale = max(width / w, height / h)
    resized = cv2.resize(
        image, (max(width, round(w * scale)), max(height, round(h * scale))), interpolation=cv2.INTER_AREA
    )
    rh, rw = resized.shape[:2]
    top = (rh - height) // 2
    left = (rw - width) // 2
    return np.ascontiguousarray(resized[top : top + height, left : left + width])


def empty_room(*, width: int = WIDTH, height: int = HEIGHT, seed: int = 7) -> np.ndarray:
    """A plain wall with a soft vertical light gradient and sensor noise: a lit room with nobody in it."""
    rng = np.random.default_rng(seed)
    gradient = np.linspace(170, 120, height, dtype=np.float32)[:, None, None]
    wall = np.broadcast_to(gradient, (height, width, 3)) * np.array([0.95, 1.0, 1.05], np.float32)
    noisy = wall + rng.normal(0, 3, (height, width, 3)).astype(np.float32)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def source_image(source: Source | None, evalset_dir: Path) -> np.ndarray:
    if source is None:
        return empty_room()
    path = Path(evalset_dir) / source.file
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"{path} is missing or unreadable: run `python bench/evalset.py fetch` first")
    if source.rows is not None:
        image = image[source.rows[0] : source.rows[1]]
    if source.cols is not None:
        image = image[:, source.cols[0] : source.cols[1]]
    return fit(image)


def jitter(frame: np.ndarray, count: int) -> Iterable[np.ndarray]:
    """`count` frames of the same picture moved by up to 2 px, like a camera on a desk."""
    offsets = [(0, 0), (1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1), (2, 0)]
    for i in range(count):
        dx, dy = offsets[i % len(offsets)]
        matrix = np.float32([[1, 0, dx], [0, 1, dy]])
        yield cv2.warpAffine(frame, matrix, (frame.shape[1], frame.shape[0]), borderMode=cv2.BORDER_REPLICATE)


def write_y4m(path: Path, frames: Iterable[np.ndarray], *, fps: int = 5) -> Path:
    """Write BGR frames (all WIDTH x HEIGHT) as a 4:2:0 YUV4MPEG2 file Chromium's fake capture device can play."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F{fps}:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        for frame in frames:
            if frame.shape != (HEIGHT, WIDTH, 3) or frame.dtype != np.uint8:
                raise ValueError(f"frames must be {HEIGHT}x{WIDTH}x3 uint8, not {frame.shape} {frame.dtype}")
            # I420: the full Y plane, then U and V at quarter resolution, exactly the layout Y4M 4:2:0 wants.
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
            count += 1
    if count == 0:
        raise ValueError("a clip needs at least one frame")
    return path


def read_y4m(path: Path) -> list[np.ndarray]:
    """Read a clip written by write_y4m back into BGR frames (for the builder's own checks)."""
    data = Path(path).read_bytes()
    header, _, rest = data.partition(b"\n")
    fields = dict((token[:1].decode(), token[1:].decode()) for token in header.split()[1:])
    width, height = int(fields["W"]), int(fields["H"])
    size = width * height * 3 // 2
    frames = []
    marker = b"FRAME\n"
    offset = 0
    while offset < len(rest):
        if rest[offset : offset + len(marker)] != marker:
            raise ValueError(f"bad frame marker at byte {offset}")
        offset += len(marker)
        plane = np.frombuffer(rest[offset : offset + size], np.uint8).reshape(height * 3 // 2, width)
        frames.append(cv2.cvtColor(plane, cv2.COLOR_YUV2BGR_I420))
        offset += size
    return frames


def build_phase_clips(evalset_dir: Path, out_dir: Path, *, fps: int = 5, seconds: float = 2.0) -> dict[str, Path]:
    """Build one looping clip per phase; returns {phase: path}. About 4.6 MB per clip at the defaults."""
    count = max(1, round(fps * seconds))
    clips = {}
    for phase, source in PHASES.items():
        frame = source_image(source, evalset_dir)
        clips[phase] = write_y4m(Path(out_dir) / f"{phase}.y4m", jitter(frame, count), fps=fps)
    return clips


def preview(clips: dict[str, Path], out: Path) -> Path:
    """A contact sheet of each clip's first frame, to look at."""
    tiles = []
    for phase, path in clips.items():
        frame = cv2.resize(read_y4m(path)[0], (320, 240))
        cv2.putText(frame, phase, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 255, 255), 2)
        tiles.append(frame)
    while len(tiles) % 3:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i : i + 3]) for i in range(0, len(tiles), 3)]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), np.vstack(rows))
    return Path(out)
