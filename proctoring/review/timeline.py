"""The review timeline as SVG, drawn here: flags as spans, browser signals and stream problems as marks, attention
and gaze as line charts. Pure: plain data in, markup out; no Django, no chart library.

Made to be read without colour: every flag kind has its own fill pattern and its lane is labelled; the review status
is written beside each span (and drawn as a solid, thick or dashed outline); marks carry a letter. Each flag span is
a link to the flag's card, focusable with the keyboard, with a <title> that reads out kind, time and status.
The page also shows the same data as tables (see `attention_by_minute`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import TypeVar

# A chart's values: attention (whole points) or gaze (degrees).
Value = TypeVar("Value", int, float)

KIND_ORDER = ("identity_mismatch", "multiple_faces", "phone_detected", "face_not_found", "looking_away")
KIND_LABELS = {
    "identity_mismatch": "Identity mismatch",
    "multiple_faces": "Multiple faces",
    "phone_detected": "Phone detected",
    "face_not_found": "Face not found",
    "looking_away": "Looking away",
}
# Colour is a second cue only; the pattern and the lane label carry the meaning.
KIND_COLOURS = {
    "identity_mismatch": "#8e1b1b",
    "multiple_faces": "#6a3d9a",
    "phone_detected": "#b35900",
    "face_not_found": "#1f5f8b",
    "looking_away": "#3b6e22",
}
STATUS_TEXT = {"open": "open", "confirmed": "confirmed", "dismissed": "dismissed"}
# Letters for marks, so they read without colour; the legend spells them out.
MARK_LETTERS = {
    "tab_hidden": "T",
    "fullscreen_exit": "F",
    "paste": "P",
    "camera_stopped": "C",
    "stalled": "S",
    "disconnected": "D",
    "resumed": "R",
    "server_error": "E",
}

WIDTH = 960
LEFT = 150
RIGHT = 24
LANE_H = 28
CHART_H = 120
GAZE_H = 80
# The gaze chart's scale: degrees from the student's own straight-ahead gaze, at least this far.
GAZE_SCALE = 40.0
TICKS = (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)


@dataclass(frozen=True)
class Span:
    id: int
    kind: str
    start: float  # seconds since the epoch
    end: float | None  # None: still open at the end of the data
    status: str
    href: str
    confidence: float = 0.0


@dataclass(frozen=True)
class Mark:
    kind: str
    label: str
    at: float
    lane: str  # "browser" or "stream"


def clock(seconds: float) -> str:
    """Offset from the start as m:ss, or h:mm:ss past an hour."""
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _tick_step(duration: float) -> int:
    return next((t for t in TICKS if duration / t <= 10), TICKS[-1])


def _segments(points: Sequence[tuple[float, Value]], gap: float) -> list[list[tuple[float, Value]]]:
    """Split the series where frames stop for longer than `gap` seconds, so a stall shows as a gap, not a slope."""
    out: list[list[tuple[float, Value]]] = []
    for point in points:
        if not out or point[0] - out[-1][-1][0] > gap:
            out.append([])
        out[-1].append(point)
    return out


def attention_by_minute(points: Sequence[tuple[float, int]], start: float) -> list[tuple[str, int, int, int, int]]:
    """The attention series as a table: (from, frames, lowest, mean, highest) per minute of the session."""
    buckets: dict[int, list[int]] = {}
    for at, value in points:
        buckets.setdefault(int((at - start) // 60), []).append(value)
    return [
        (clock(minute * 60), len(vals), min(vals), int(round(sum(vals) / len(vals))), max(vals))
        for minute, vals in sorted(buckets.items())
    ]


def gaze_by_minute(points: Sequence[tuple[float, float]], start: float) -> list[tuple[str, int, int, int]]:
    """The gaze series (degrees off the student's own straight-ahead gaze) as a table: (from, frames with the eyes
    seen, mean, highest) per minute of the session."""
    buckets: dict[int, list[float]] = {}
    for at, value in points:
        buckets.setdefault(int((at - start) // 60), []).append(value)
    return [
        (clock(minute * 60), len(vals), int(round(sum(vals) / len(vals))), int(round(max(vals))))
        for minute, vals in sorted(buckets.items())
    ]


@dataclass(frozen=True)
class GazeChart:
    """Where the eyes looked: per frame, degrees off the student's own straight-ahead gaze (the larger of yaw and
    pitch), for the frames whose eyes could be seen; `limit` is the exam's gaze limit; `used` False when an
    accommodation leaves gaze out for this student (the chart then says so and draws nothing)."""

    points: Sequence[tuple[float, float]]
    limit: float
    used: bool = True


def render(
    *,
    start: float,
    end: float,
    spans: Sequence[Span],
    marks: Sequence[Mark],
    attention: Sequence[tuple[float, int]],
    title: str,
    description: str,
    frame_interval_s: float = 2.0,
    width: int = WIDTH,
    gaze: GazeChart | None = None,
) -> str:
    """The timeline SVG. `start`/`end` bound the time axis (seconds since the epoch)."""
    duration = max(end - start, 1.0)
    plot_w = width - LEFT - RIGHT

    def x(at: float) -> float:
        return round(LEFT + plot_w * (min(max(at, start), end) - start) / duration, 1)

    kinds = [k for k in KIND_ORDER if any(s.kind == k for s in spans)] or []
    lanes = [*kinds, "browser", "stream"]
    lane_y = {name: 34 + i * LANE_H for i, name in enumerate(lanes)}
    chart_top = 34 + len(lanes) * LANE_H + 18
    gaze_top = chart_top + CHART_H + 22
    axis_y = (gaze_top + GAZE_H if gaze is not None else chart_top + CHART_H) + 6
    legend_y = axis_y + 34
    height = legend_y + 20 + 18 * 2

    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="group" aria-labelledby="timeline-title" '
        'aria-describedby="timeline-desc">',
        f'<title id="timeline-title">{escape(title)}</title>',
        f'<desc id="timeline-desc">{escape(description)}</desc>',
        "<defs>",
    ]
    out += _patterns()
    out.append("</defs>")
    out.append(f'<text x="{LEFT}" y="18" class="tl-heading">Session time (from {clock(0)} to {clock(duration)})</text>')

    # Lanes: labelled rows with a faint rule, so each span reads by its row as well as its pattern.
    lane_names = {**KIND_LABELS, "browser": "Browser signals", "stream": "Connection"}
    for name in lanes:
        y = lane_y[name]
        out.append(f'<text x="{LEFT - 8}" y="{y + 18}" text-anchor="end" class="tl-lane">{lane_names[name]}</text>')
        out.append(
            f'<line x1="{LEFT}" x2="{width - RIGHT}" y1="{y + LANE_H - 2}" y2="{y + LANE_H - 2}" class="tl-rule"/>'
        )

    # Flag spans: a minimum width so a one-frame flag is still visible and clickable.
    for span in sorted(spans, key=lambda s: (KIND_ORDER.index(s.kind) if s.kind in KIND_ORDER else 9, s.start)):
        if span.kind not in lane_y:
            continue
        y = lane_y[span.kind] + 4
        x0 = x(span.start)
        x1 = max(x(span.end if span.end is not None else end), x0 + 6)
        label = KIND_LABELS.get(span.kind, span.kind)
        status = STATUS_TEXT.get(span.status, span.status)
        until = clock(span.end - start) if span.end is not None else "the end"
        name = f"{label}, {clock(span.start - start)} to {until}, {status}, confidence {span.confidence:.2f}"
        out.append(
            f'<a href="{escape(span.href)}" class="tl-flag tl-{escape(span.status)}" tabindex="0" '
            f'aria-label="{escape(name)}" data-flag="{span.id}">'
        )
        out.append(f"<title>{escape(name)}</title>")
        out.append(
            f'<rect x="{x0}" y="{y}" width="{round(x1 - x0, 1)}" height="{LANE_H - 10}" rx="2" '
            f'fill="url(#pat-{escape(span.kind)})" stroke="{KIND_COLOURS.get(span.kind, "#333")}" '
            f'class="tl-span tl-span-{escape(span.status)}"/>'
        )
        glyph = {"confirmed": "\u2713", "dismissed": "\u2715"}.get(span.status, "?")
        out.append(f'<text x="{round(x1 + 3, 1)}" y="{y + 13}" class="tl-status" aria-hidden="true">{glyph}</text>')
        out.append("</a>")

    # Marks: a tick and a letter; the letter is the non-colour cue.
    for mark in sorted(marks, key=lambda m: m.at):
        if mark.lane not in lane_y:
            continue
        y = lane_y[mark.lane]
        mx = x(mark.at)
        letter = MARK_LETTERS.get(mark.kind, "•")
        text = f"{mark.label} at {clock(mark.at - start)}"
        out.append(f'<g class="tl-mark tl-mark-{escape(mark.lane)}"><title>{escape(text)}</title>')
        out.append(f'<line x1="{mx}" x2="{mx}" y1="{y + 2}" y2="{y + LANE_H - 4}" class="tl-mark-line"/>')
        out.append(f'<text x="{mx}" y="{y + 12}" text-anchor="middle" class="tl-mark-letter">{letter}</text>')
        out.append("</g>")

    # An empty lane says so: a blank row could also mean "not drawn".
    for lane in ("browser", "stream"):
        if not any(m.lane == lane for m in marks):
            out.append(f'<text x="{LEFT + 6}" y="{lane_y[lane] + 18}" class="tl-note">none recorded</text>')

    # Attention chart with the label thresholds drawn and named (Focused >= 70, Distracted >= 40).
    def y_of(value: float) -> float:
        return round(chart_top + CHART_H * (1 - value / 100.0), 1)

    middle = chart_top + CHART_H / 2
    out.append(f'<text x="{LEFT - 34}" y="{middle}" text-anchor="end" class="tl-lane">Attention</text>')
    out.append(f'<text x="{LEFT - 34}" y="{middle + 14}" text-anchor="end" class="tl-note">(0 to 100)</text>')
    out.append(f'<rect x="{LEFT}" y="{chart_top}" width="{plot_w}" height="{CHART_H}" class="tl-chart-bg"/>')
    for value in (70, 40):
        yy = y_of(value)
        out.append(f'<line x1="{LEFT}" x2="{width - RIGHT}" y1="{yy}" y2="{yy}" class="tl-guide"/>')
    # The bands are named (the live labels), so the chart reads without knowing the thresholds.
    for top, name in ((100, "Focused (70 and up)"), (70, "Distracted (40 to 69)"), (40, "Away (below 40)")):
        out.append(
            f'<text x="{width - RIGHT - 4}" y="{y_of(top) + 12}" text-anchor="end" class="tl-band">{name}</text>'
        )
    # The scale sits outside the plot, so the line never covers it.
    for value in (0, 40, 70, 100):
        out.append(f'<text x="{LEFT - 6}" y="{y_of(value) + 4}" text-anchor="end" class="tl-note">{value}</text>')
    gap = max(frame_interval_s * 3, 1.0)
    for segment in _segments(sorted(attention), gap):
        if len(segment) == 1:
            at, value = segment[0]
            out.append(f'<circle cx="{x(at)}" cy="{y_of(value)}" r="2" class="tl-attention-dot"/>')
            continue
        coords = " ".join(f"{x(at)},{y_of(value)}" for at, value in segment)
        out.append(f'<polyline points="{coords}" class="tl-attention"/>')

    if gaze is not None:
        out += _gaze_chart(gaze, top=gaze_top, x=x, width=width, gap=gap)

    # Time axis.
    step = _tick_step(duration)
    out.append(f'<line x1="{LEFT}" x2="{width - RIGHT}" y1="{axis_y}" y2="{axis_y}" class="tl-axis"/>')
    tick = 0
    while tick <= duration + 1e-6:
        tx = x(start + tick)
        out.append(f'<line x1="{tx}" x2="{tx}" y1="{axis_y}" y2="{axis_y + 5}" class="tl-axis"/>')
        out.append(f'<text x="{tx}" y="{axis_y + 18}" text-anchor="middle" class="tl-note">{clock(tick)}</text>')
        tick += step

    # Legend: status glyphs and mark letters, spelled out.
    out.append(f'<g class="tl-legend" transform="translate({LEFT},{legend_y})">')
    out.append(
        '<text x="0" y="0" class="tl-note">Flags: \u2713 confirmed (thick outline), \u2715 dismissed (dashed '
        "outline), ? open (thin outline). Each kind has its own pattern and row.</text>"
    )
    letters = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in MARK_LETTERS.items())
    out.append(f'<text x="0" y="18" class="tl-note">Marks: {escape(letters)}.</text>')
    out.append(
        '<text x="0" y="36" class="tl-note">Gaps in the attention and gaze lines are times with no frames '
        "(stalls) or, for gaze, eyes that could not be read; never counted against the student.</text>"
    )
    out.append("</g></svg>")
    return "\n".join(out)


def _gaze_chart(gaze: GazeChart, *, top: float, x: Callable[[float], float], width: int, gap: float) -> list[str]:
    """The gaze chart under the attention chart: 0 (straight ahead) at the bottom, the exam's limit drawn and named."""
    scale = max(GAZE_SCALE, gaze.limit * 1.5)

    def y_of(value: float) -> float:
        return round(top + GAZE_H * (1 - min(value, scale) / scale), 1)

    middle = top + GAZE_H / 2
    plot_w = width - LEFT - RIGHT
    out = [
        f'<text x="{LEFT - 34}" y="{middle}" text-anchor="end" class="tl-lane">Gaze</text>',
        f'<text x="{LEFT - 34}" y="{middle + 14}" text-anchor="end" class="tl-note">(degrees off)</text>',
        f'<rect x="{LEFT}" y="{top}" width="{plot_w}" height="{GAZE_H}" class="tl-chart-bg"/>',
    ]
    for value in (0, gaze.limit, scale):
        out.append(f'<text x="{LEFT - 6}" y="{y_of(value) + 4}" text-anchor="end" class="tl-note">{value:.0f}</text>')
    if not gaze.used:
        out.append(
            f'<text x="{LEFT + 6}" y="{middle + 4}" class="tl-note">Gaze is not used for this student '
            "(an accommodation): it never counts towards looking away or attention.</text>"
        )
        return out
    yy = y_of(gaze.limit)
    out.append(f'<line x1="{LEFT}" x2="{width - RIGHT}" y1="{yy}" y2="{yy}" class="tl-guide tl-gaze-limit"/>')
    out.append(
        f'<text x="{width - RIGHT - 4}" y="{yy - 4}" text-anchor="end" class="tl-band">'
        f"Looking away past {gaze.limit:.0f}°</text>"
    )
    if not gaze.points:
        out.append(
            f'<text x="{LEFT + 6}" y="{middle + 4}" class="tl-note">No gaze measured: the eyes were never clear '
            "enough to read, or the model pack has no gaze.</text>"
        )
        return out
    for segment in _segments(sorted(gaze.points), gap):
        if len(segment) == 1:
            at, value = segment[0]
            out.append(f'<circle cx="{x(at)}" cy="{y_of(value)}" r="2" class="tl-gaze-dot"/>')
            continue
        coords = " ".join(f"{x(at)},{y_of(value)}" for at, value in segment)
        out.append(f'<polyline points="{coords}" class="tl-gaze"/>')
    return out


def _patterns() -> list[str]:
    """One fill pattern per flag kind: diagonal, cross-hatch, dots, vertical and horizontal lines."""
    shapes = {
        "identity_mismatch": '<circle cx="3" cy="3" r="1.6" fill="{c}"/>',
        "multiple_faces": '<path d="M0 0L6 6M6 0L0 6" stroke="{c}" stroke-width="1.2"/>',
        "phone_detected": '<path d="M3 0V6" stroke="{c}" stroke-width="1.6"/>',
        "face_not_found": '<path d="M0 6L6 0" stroke="{c}" stroke-width="1.4"/>',
        "looking_away": '<path d="M0 3H6" stroke="{c}" stroke-width="1.6"/>',
    }
    out = []
    for kind, shape in shapes.items():
        colour = KIND_COLOURS[kind]
        out.append(
            f'<pattern id="pat-{kind}" width="6" height="6" patternUnits="userSpaceOnUse">'
            f'<rect width="6" height="6" fill="#fff"/>{shape.format(c=colour)}</pattern>'
        )
    return out
