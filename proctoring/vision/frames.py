"""Decode and validate untrusted image bytes (webcam frames, uploaded ID photos) into BGR arrays.

Every frame comes from a browser we do not control, so the checks run cheapest first:

1. the byte length (free);
2. the format, from the magic bytes (free): JPEG, PNG and WebP only;
3. the pixel count, each side and the aspect ratio, from the header via Pillow's lazy ``open`` (reads a few hundred
   bytes), BEFORE any pixel is decoded, so a 20000x20000 PNG header costs microseconds instead of 1.2 GB, and a
   1x16384 JPEG (4.7 KB, few pixels) never reaches code that scales images by one side;
4. the full decode, where a truncated or garbled file raises and becomes ``corrupt``.
"""

from __future__ import annotations

import io
import warnings

import numpy as np

REASONS = ("empty", "too_large", "too_many_pixels", "bad_shape", "unsupported_format", "corrupt")

# No camera, phone photo or scanned ID is longer than 4 times its width (a phone portrait is 16:9, about 1.8).
MAX_ASPECT = 4.0
MAX_SIDE = 8192


class FrameError(ValueError):
    """A frame that cannot be analysed. ``reason`` is a stable code, ``message`` is for people."""

    def __init__(self, reason: str, message: str) -> None:
        assert reason in REASONS, reason
        super().__init__(message)
        self.reason = reason
        self.message = message


def sniff_format(data: bytes) -> str | None:
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def fit_within(width: int, height: int, box_width: int, box_height: int) -> tuple[int, int]:
    """The size of a width x height image scaled (keeping its aspect ratio) to fit inside box_width x box_height.

    Every derived image (thumbnails, crops scaled for a measure) goes through this, never "scale to a width": a
    width-only scale of a 1x16384 frame is 160x2.6M pixels."""
    if width <= 0 or height <= 0:
        return 1, 1
    scale = min(box_width / width, box_height / height)
    return max(1, min(box_width, round(width * scale))), max(1, min(box_height, round(height * scale)))


def decode_frame(
    data: bytes,
    *,
    max_bytes: int = 2_000_000,
    max_pixels: int = 4096 * 4096,
    max_side: int = MAX_SIDE,
    max_aspect: float = MAX_ASPECT,
) -> np.ndarray:
    """Bytes of a JPEG, PNG or WebP image -> BGR uint8 array (H, W, 3). Raises FrameError."""
    # Imported here, not at the top: the ASGI server imports this module, and OpenCV and Pillow add about 30 MB to
    # a process that decodes a frame only for an alert's thumbnail or an enrolment photo.
    import cv2
    from PIL import Image

    if not isinstance(data, bytes | bytearray | memoryview):
        raise FrameError("unsupported_format", "The frame must be image bytes.")
    data = bytes(data)
    if not data:
        raise FrameError("empty", "The frame was empty. Check that your camera is on.")
    if len(data) > max_bytes:
        raise FrameError(
            "too_large",
            f"The image is {len(data) // 1024} KB; the limit is {max_bytes // 1024} KB. Send a smaller one.",
        )
    fmt = sniff_format(data)
    if fmt is None:
        raise FrameError("unsupported_format", "That is not a JPEG, PNG or WebP image.")
    try:
        # Pillow's own bomb check is a warning below 2x its limit; ours is explicit and runs on the header alone.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            try:
                image = Image.open(io.BytesIO(data), formats=[fmt])
            except Image.DecompressionBombError as exc:
                # Pillow refuses headers over twice its own limit (about 179 Mpx) before we see the size.
                raise FrameError("too_many_pixels", "The image has far too many pixels. Send a smaller one.") from exc
            width, height = image.size
            if width <= 0 or height <= 0:
                raise FrameError("corrupt", "The image has no pixels.")
            if width * height > max_pixels:
                raise FrameError(
                    "too_many_pixels",
                    f"The image is {width}x{height} pixels; the limit is {max_pixels:,} pixels. Send a smaller one.",
                )
            if max(width, height) > max_side or max(width, height) > max_aspect * min(width, height):
                raise FrameError(
                    "bad_shape",
                    f"The image is {width}x{height} pixels, which no camera takes. Send a normal photo, at most "
                    f"{max_side} pixels a side and at most {max_aspect:g} times as long as it is wide.",
                )
            if fmt == "JPEG":
                # The pixels of a webcam frame straight into BGR with libjpeg-turbo, once Pillow has checked the
                # header: Pillow's decode and the conversions to a BGR array took 4.8 ms of a 640x480 frame, this
                # 0.8 ms (issue 8), the same pixels. OpenCV applies an EXIF rotation as exif_transpose did (ID
                # photos from phones carry one), so the decoded shape is the header's, or its transpose.
                bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
                if bgr is None or bgr.shape[:2] not in ((height, width), (width, height)):
                    raise FrameError("corrupt", "The image could not be read; it may be damaged or cut short.")
                return bgr
            image.load()
            rgb = np.asarray(image.convert("RGB"))
    except FrameError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, EOFError, cv2.error) as exc:
        raise FrameError("corrupt", "The image could not be read; it may be damaged or cut short.") from exc
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise FrameError("corrupt", "The image could not be read as colour pixels.")
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def mean_luma(image: np.ndarray) -> float:
    """The picture's mean brightness as the eye sees it, 0-255 (ITU-R BT.601 weights on BGR)."""
    return float((image[..., 0] * 0.114 + image[..., 1] * 0.587 + image[..., 2] * 0.299).mean())


def encode_jpeg(image: np.ndarray, *, quality: int = 85) -> bytes:
    """BGR array -> JPEG bytes (for snapshots and tests)."""
    from PIL import Image  # lazy: Pillow only when a picture is made

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image[:, :, ::-1])).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
