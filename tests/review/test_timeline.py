"""The timeline SVG, as pure data in and markup out."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from proctoring.review.timeline import GazeChart, Mark, Span, attention_by_minute, clock, gaze_by_minute, render

NS = {"svg": "http://www.w3.org/2000/svg"}
T0 = 1_700_000_000.0


def draw(**kwargs) -> ET.Element:
    args = {
        "start": T0,
        "end": T0 + 120,
        "spans": [],
        "marks": [],
        "attention": [],
        "title": "Timeline of alice",
        "description": "Two minutes",
    }
    args.update(kwargs)
    return ET.fromstring(render(**args))


def test_it_is_well_formed_svg_with_a_title_and_description_that_label_it():
    svg = draw()
    assert svg.get("aria-labelledby") == "timeline-title"
    assert svg.find("svg:title", NS).text == "Timeline of alice"
    assert svg.find("svg:desc", NS).text == "Two minutes"


def test_each_flag_is_a_keyboard_focusable_link_to_its_card_that_reads_out_kind_time_and_status():
    svg = draw(
        spans=[
            Span(id=7, kind="phone_detected", start=T0 + 30, end=T0 + 40, status="confirmed", href="#flag-7"),
            Span(id=8, kind="looking_away", start=T0 + 60, end=None, status="dismissed", href="#flag-8"),
        ]
    )
    links = svg.findall(".//svg:a", NS)
    assert [a.get("href") for a in links] == ["#flag-7", "#flag-8"]
    assert all(a.get("tabindex") == "0" for a in links)
    assert links[0].get("aria-label").startswith("Phone detected, 0:30 to 0:40, confirmed")
    assert "to the end, dismissed" in links[1].get("aria-label")


def test_kinds_differ_by_pattern_and_labelled_row_not_only_by_colour():
    svg = draw(
        spans=[
            Span(id=1, kind="multiple_faces", start=T0, end=T0 + 5, status="open", href="#flag-1"),
            Span(id=2, kind="face_not_found", start=T0 + 10, end=T0 + 20, status="open", href="#flag-2"),
        ]
    )
    fills = {r.get("fill") for r in svg.findall(".//svg:a/svg:rect", NS)}
    assert fills == {"url(#pat-multiple_faces)", "url(#pat-face_not_found)"}
    texts = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert "Multiple faces" in texts and "Face not found" in texts
    # The status is written beside each span as a glyph the legend explains.
    assert texts.count("?") == 2


def test_user_text_is_escaped():
    svg = render(
        start=T0,
        end=T0 + 10,
        spans=[],
        marks=[Mark(kind="paste", label="<script>alert(1)</script>", at=T0 + 2, lane="browser")],
        attention=[],
        title='alice "<b>"',
        description="&",
    )
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    ET.fromstring(svg)


def test_a_stall_leaves_a_gap_in_the_attention_line():
    points = [(T0 + 2 * i, 90) for i in range(10)] + [(T0 + 60 + 2 * i, 50) for i in range(10)]
    svg = draw(attention=points)
    assert len(svg.findall(".//svg:polyline", NS)) == 2


def test_attention_table_groups_frames_by_minute():
    points = [(T0 + 10, 100), (T0 + 20, 40), (T0 + 70, 0)]
    assert attention_by_minute(points, T0) == [("0:00", 2, 40, 70, 100), ("1:00", 1, 0, 0, 0)]
    assert clock(3725) == "1:02:05"


def _texts(svg) -> list[str]:
    return [t.text or "" for t in svg.iter("{http://www.w3.org/2000/svg}text")]


def test_gaze_is_drawn_under_attention_with_the_exams_limit_named():
    points = [(T0 + i * 2, 4.0) for i in range(10)] + [(T0 + 20 + i * 2, 30.0) for i in range(5)]
    svg = draw(gaze=GazeChart(points=points, limit=20.0))
    line = svg.find(".//svg:polyline[@class='tl-gaze']", NS)
    ys = [float(p.split(",")[1]) for p in line.get("points").split()]
    # Higher on the chart is further off: the averted frames sit above the limit's guide, the calm ones below.
    guide_y = float(svg.find(".//svg:line[@class='tl-guide tl-gaze-limit']", NS).get("y1"))
    assert all(y > guide_y for y in ys[:10]) and all(y < guide_y for y in ys[10:])
    assert "Looking away past 20°" in _texts(svg) and "Gaze" in _texts(svg)
    attention = svg.find(".//svg:polyline[@class='tl-attention']", NS)
    assert attention is None  # no attention points given: only gaze drawn


def test_gaze_left_out_by_an_accommodation_says_so_and_draws_nothing():
    svg = draw(gaze=GazeChart(points=[(T0, 35.0)], limit=20.0, used=False))
    assert svg.find(".//svg:polyline[@class='tl-gaze']", NS) is None
    assert svg.find(".//svg:circle[@class='tl-gaze-dot']", NS) is None
    assert any("not used for this student (an accommodation)" in t for t in _texts(svg))


def test_no_gaze_measured_is_said_not_drawn_as_zero():
    svg = draw(gaze=GazeChart(points=[], limit=20.0))
    assert any(t.startswith("No gaze measured") for t in _texts(svg))
    assert draw().find(".//svg:rect[@height='80']", NS) is None  # no gaze given: no gaze chart at all


def test_gaze_table_groups_frames_by_minute():
    rows = gaze_by_minute([(T0 + 5, 4.0), (T0 + 30, 10.0), (T0 + 70, 33.4)], T0)
    assert rows == [("0:00", 2, 7, 10), ("1:00", 1, 33, 33)]
