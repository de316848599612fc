"""The Y4M builder that feeds Chromium's fake webcam."""

from __future__ import annotations

import numpy as np
import pytest

from tests.e2e import clip


def test_a_clip_round_trips_through_y4m_with_the_header_chromium_reads(tmp_path):
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[100:300, 200:400] = (40, 160, 220)
    path = clip.write_y4m(tmp_path / "c.y4m", clip.jitter(frame, 5), fps=5)
    assert path.read_bytes().startswith(b"YUV4MPEG2 W640 H480 F5:1 Ip A1:1 C420jpeg\n")
    frames = clip.read_y4m(path)
    assert len(frames) == 5
    # 4:2:0 loses chroma detail at the edges only; the body of the patch survives within a few levels.
    assert np.abs(frames[0][150:250, 250:350].astype(int) - (40, 160, 220)).max() <= 4
    assert path.stat().st_size == len("YUV4MPEG2 W640 H480 F5:1 Ip A1:1 C420jpeg\n") + 5 * (6 + 640 * 480 * 3 // 2)


def test_fit_covers_the_frame_without_bars_whatever_the_photo_shape():
    for shape in [(512, 512, 3), (720, 1280, 3), (600, 800, 3), (1367, 1920, 3)]:
        fitted = clip.fit(np.full(shape, 200, np.uint8))
        assert fitted.shape == (480, 640, 3)
        assert fitted.min() == 200


def test_the_empty_room_is_evenly_lit_and_has_nobody_in_it():
    room = clip.empty_room()
    assert room.shape == (480, 640, 3)
    assert 120 < room.mean() < 170


def test_a_frame_of_the_wrong_size_is_refused(tmp_path):
    with pytest.raises(ValueError, match="480x640x3"):
        clip.write_y4m(tmp_path / "bad.y4m", [np.zeros((10, 10, 3), np.uint8)])


def test_a_missing_photo_names_the_fetch_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="evalset.py fetch"):
        clip.source_image(clip.Source("nope.jpg"), tmp_path)
