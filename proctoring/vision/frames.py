"""Decode and validate untrusted image bytes (webcam frames, uploaded ID photos) into BGR arrays.

Every frame comes from a browser we do not control, so the checks run cheapest first:

1. the byte length (free);
2. the format, from the magic bytes (free): JPEG, PNG and WebP only;
3. the pixel count, from the header via Pillow's lazy ``open`` (reads a few hundred bytes), BEFORE any pixel is
   decoded, so a 20000x20000 PNG header costs microseconds instead of 1.2 GB;
4. the full decode, where a truncated or garbled file raises and becomes ``corrupt``.
"""

from __future__ import annotations

import io
import warnings

import numpy as np

REASONS = ("empty", "too_large", "too_many_pixels", "unsupported_format", "corrupt")


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


def decode_frame(data: bytes, *, max_bytes: int = 2_000_000, max_pixels: int = 4096 * 4096) -> np.ndarray:
    """Bytes of a JPEG, PNG or WebP image -> BGR uint8 array (H, W, 3). Raises FrameError."""
    from PIL import Image, ImageOps

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
            image.load()
            if fmt == "JPEG":
                # ID photos from phones carry their rotation in EXIF; webcam frames have none (a no-op).
                image = ImageOps.exif_transpose(image)
            rgb = np.asarray(image.convert("RGB"))
    except FrameError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, EOFError) as exc:
        raise FrameError("corrupt", "The image could not be read; it may be damaged or cut short.") from exc
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise FrameError("corrupt", "The image could not be read as colour pixels.")
    return np.ascontiguousarray(rgb[:, :, ::-1])


def encode_jpeg(image: np.ndarray, *, quality: int = 85) -> bytes:
    """BGR array -> JPEG bytes (for snapshots and tests)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image[:, :, ::-1])).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
