"""Frame decoding: real images in, typed errors out for hostile input, the pixel cap checked from the header."""

from __future__ import annotations

import io
import os
import struct
import time
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image

from proctoring.vision.frames import FrameError, decode_frame, fit_within


def encode(rgb: np.ndarray, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG signature and IHDR claiming width x height, with a token IDAT: what a decompression bomb looks like."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.fixture
def red_square() -> np.ndarray:
    rgb = np.zeros((48, 64, 3), dtype=np.uint8)
    rgb[..., 0] = 200  # red in RGB
    return rgb


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_it_decodes_each_supported_format_to_bgr(red_square, fmt):
    image = decode_frame(encode(red_square, fmt, quality=95) if fmt != "PNG" else encode(red_square, fmt))

    assert image.shape == (48, 64, 3) and image.dtype == np.uint8
    # BGR: red lands in the last channel.
    assert image[..., 2].mean() > 180 and image[..., 0].mean() < 20


def test_it_decodes_a_real_webcam_sized_photo(photo):
    image = decode_frame(encode(photo("astronaut")[:, :, ::-1].copy(), "JPEG", quality=80))
    assert image.shape == (512, 512, 3)


def test_truncated_jpeg_is_corrupt(red_square):
    data = encode(np.random.default_rng(1).integers(0, 255, (240, 320, 3), dtype=np.uint8), "JPEG")
    with pytest.raises(FrameError) as err:
        decode_frame(data[: len(data) // 2])
    assert err.value.reason == "corrupt"
    assert "damaged" in err.value.message


def test_zero_bytes_is_empty():
    with pytest.raises(FrameError) as err:
        decode_frame(b"")
    assert err.value.reason == "empty"


def test_a_20000_by_20000_png_header_is_refused_before_decoding():
    data = png_header_only(20_000, 20_000)
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(FrameError) as err:
        decode_frame(data)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert err.value.reason == "too_many_pixels"
    # Decoding would need 1.2 GB; the header check needs next to nothing.
    assert peak < 5_000_000
    assert elapsed < 0.5


def test_a_header_just_over_the_cap_names_its_size():
    with pytest.raises(FrameError) as err:
        decode_frame(png_header_only(5000, 5000))
    assert err.value.reason == "too_many_pixels"
    assert "5000x5000" in err.value.message


def test_random_bytes_are_an_unsupported_format():
    with pytest.raises(FrameError) as err:
        decode_frame(os.urandom(4096))
    assert err.value.reason == "unsupported_format"


def test_text_is_an_unsupported_format():
    with pytest.raises(FrameError) as err:
        decode_frame(b"<html><body>not an image</body></html>")
    assert err.value.reason == "unsupported_format"


def test_a_gif_is_an_unsupported_format(red_square):
    with pytest.raises(FrameError) as err:
        decode_frame(encode(red_square, "GIF"))
    assert err.value.reason == "unsupported_format"


def test_jpeg_magic_followed_by_garbage_is_corrupt():
    with pytest.raises(FrameError) as err:
        decode_frame(b"\xff\xd8\xff" + os.urandom(2048))
    assert err.value.reason == "corrupt"


def test_bytes_over_the_cap_are_too_large(red_square):
    data = encode(red_square, "PNG")
    with pytest.raises(FrameError) as err:
        decode_frame(data, max_bytes=len(data) - 1)
    assert err.value.reason == "too_large"


def test_a_non_bytes_argument_is_refused():
    with pytest.raises(FrameError) as err:
        decode_frame("not bytes")  # type: ignore[arg-type]
    assert err.value.reason == "unsupported_format"


@pytest.mark.parametrize("size", [(1, 16384), (2, 65500), (16384, 1), (400, 1700), (4096, 8193 // 2 * 2 + 2)])
def test_an_absurd_shape_is_refused_from_the_header_before_decoding(size):
    # A 1x16384 JPEG is 4.7 KB and few pixels, so the pixel cap let it through; scaled to a 160 px wide thumbnail it
    # became 160x2.6M pixels and raised the worker from 347 MB to 1.5 GB. No camera takes such a picture.
    data = encode(np.zeros((size[1], size[0], 3), dtype=np.uint8), "JPEG")
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(FrameError) as err:
        decode_frame(data, max_pixels=10**9)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert err.value.reason == "bad_shape"
    assert f"{size[0]}x{size[1]}" in err.value.message
    assert peak < 5_000_000 and elapsed < 0.5


@pytest.mark.parametrize("size", [(640, 480), (480, 640), (1080, 1920), (1920, 1080), (1600, 400)])
def test_camera_and_phone_shapes_are_accepted(size):
    image = decode_frame(encode(np.zeros((size[1], size[0], 3), dtype=np.uint8), "JPEG"))
    assert image.shape == (size[1], size[0], 3)


@pytest.mark.parametrize(
    ("size", "box", "expected"),
    [
        ((640, 480), (160, 160), (160, 120)),
        ((480, 640), (160, 160), (120, 160)),
        ((1, 16384), (160, 160), (1, 160)),
        ((16384, 1), (112, 112), (112, 1)),
        ((0, 10), (160, 160), (1, 1)),
    ],
)
def test_every_derived_image_fits_its_box_whatever_the_source_shape(size, box, expected):
    assert fit_within(*size, *box) == expected


def test_a_thumbnail_of_any_shape_stays_small():
    import base64

    import cv2

    from proctoring.pool.base import make_thumbnail

    for height, width in ((16384, 1), (1, 16384), (480, 640), (3000, 3000)):
        data = make_thumbnail(np.full((height, width, 3), 128, dtype=np.uint8))
        thumb = cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR)
        assert max(thumb.shape[:2]) <= 160


@pytest.mark.parametrize("orientation,turns", [(1, 0), (3, 2), (6, -1), (8, 1)])
def test_a_phone_photo_is_turned_upright_by_its_exif_orientation(photo, orientation, turns):
    """ID and reference photos from phones carry their rotation in EXIF (PIL.ImageOps.exif_transpose's meaning)."""
    import io

    from PIL import Image

    upright = np.ascontiguousarray(photo("astronaut")[:256, :384])  # RGB, wider than tall
    image = Image.fromarray(upright)
    exif = image.getexif()
    exif[0x0112] = orientation
    stored = np.rot90(upright, -turns).copy()  # what the camera stored: upright once the tag is applied
    buffer = io.BytesIO()
    Image.fromarray(stored).save(buffer, "JPEG", quality=95, exif=exif.tobytes())
    decoded = decode_frame(buffer.getvalue())
    assert decoded.shape == (256, 384, 3)
    assert np.abs(decoded[:, :, ::-1].astype(int) - upright).mean() < 4  # JPEG's loss only


def test_the_servers_thumbnail_of_a_frame_is_as_small_as_the_workers(photo):
    """An alert's own picture is made in the ASGI server from the frame's bytes (Pillow, draft mode)."""
    import base64

    import cv2

    from proctoring.pool.base import THUMBNAIL_MAX_BYTES, thumbnail_from_bytes

    frame = cv2.imencode(".jpg", cv2.resize(photo("astronaut")[:, :, ::-1], (640, 480)))[1].tobytes()
    thumb = base64.b64decode(thumbnail_from_bytes(frame))
    image = cv2.imdecode(np.frombuffer(thumb, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (120, 160, 3) and len(thumb) <= THUMBNAIL_MAX_BYTES
    assert thumbnail_from_bytes(b"\xff\xd8\xff not a picture") is None
